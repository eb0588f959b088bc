/**
 * Load-balancing losses on router gates, computed in the same forward pass as the model (no second
 * forward). Both reduce over every leading axis (tokens, batch) and return a scalar [].
 */
import { GraphError, ops, type Tensor } from '@moas/tensor-core'

function expertCount(fn: string, gates: Tensor): number {
  const S = gates.shape[gates.rank - 1]
  if (gates.rank < 2 || typeof S !== 'number')
    throw new GraphError(`${fn}: expects gates [..., S] with a static expert axis S and at least one token axis, got ${gates.describe()}`)
  return S
}

const leadingAxes = (t: Tensor) => [...Array(t.rank - 1).keys()]

/** The MoAS paper's loss: mean_s (mean over tokens of gates_s − 1/S)². 0 when the mean gate is uniform. */
export function mseBalanceLoss(gates: Tensor): Tensor {
  const S = expertCount('mseBalanceLoss', gates)
  const dev = ops.sub(ops.reduceMean(gates, leadingAxes(gates)), 1 / S) // [S]
  return ops.reduceMean(ops.mul(dev, dev), [0])
}

/**
 * Switch Transformer loss S · Σ_s f_s · P_s: f_s = share of the N·k (token, choice) pairs in `indices`
 * [..., k] that picked s (no gradient), P_s = mean gate of s over tokens. 1 under uniform routing.
 */
export function switchBalanceLoss(gates: Tensor, indices: Tensor): Tensor {
  const S = expertCount('switchBalanceLoss', gates)
  if (indices.dtype !== 'int64') throw new GraphError(`switchBalanceLoss: indices must be int64 (from topKGates), got ${indices.describe()}`)
  if (indices.rank !== gates.rank)
    throw new GraphError(`switchBalanceLoss: indices [..., k] must have the rank of gates [..., S]; got ${indices.describe()} and ${gates.describe()}`)
  const picks = ops.oneHot(indices, S, gates.dtype) // [..., k, S]
  const f = ops.reduceMean(picks, [...Array(picks.rank - 1).keys()]) // [S]
  const P = ops.reduceMean(gates, leadingAxes(gates)) // [S]
  return ops.mul(ops.reduceSum(ops.mul(f, P), [0]), S)
}
