/** Top-k selection of gates, with the weights the routed output is scaled by. */
import { GraphError, ops, type Tensor } from '@moas/tensor-core'

export interface TopK {
  /** The k largest gates, descending: [..., k]. */
  values: Tensor
  /** Their indices (int64) along the last axis: [..., k]. Ties: lowest index first. */
  indices: Tensor
  /** What each chosen expert's output is multiplied by: [..., k]. */
  weights: Tensor
  /** weights scattered back to [..., S]; exactly 0 for experts not chosen. */
  dense: Tensor
}

/**
 * Top-k of `gates` [..., S] along the last axis (ONNX TopK, sorted, largest; equal gates keep the lower
 * index first). Weights: for k = 1 the raw gate (Switch Transformer: a renormalized single gate is always 1
 * and would carry no gradient to the router); for k >= 2 the chosen gates renormalized to sum to 1.
 * `renormalize` overrides that choice either way.
 */
export function topKGates(gates: Tensor, k: number, opts: { renormalize?: boolean } = {}): TopK {
  const S = gates.shape[gates.rank - 1]
  if (typeof S !== 'number') throw new GraphError(`topKGates: the expert axis must be static, got ${gates.describe()}`)
  if (!(Number.isInteger(k) && k >= 1 && k <= S)) throw new GraphError(`topKGates: k must be an integer in [1, ${S}] (the number of experts), got ${k}`)
  const [values, indices] = ops.topk(gates, k, -1, true)
  const renormalize = opts.renormalize ?? k >= 2
  const weights = renormalize ? ops.div(values, ops.reduceSum(values, [-1], true)) : values
  const dense = ops.scatterElements(ops.zerosLike(gates), indices, weights, -1)
  return { values, indices, weights, dense }
}
