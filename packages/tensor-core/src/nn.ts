/**
 * The one helper that makes a Linear layer whose parameters carry checkpoint names. attention-schemes,
 * routing and gpt all build their projections with it, so names, shapes ([out, in], PyTorch's layout),
 * init and dtype follow one rule everywhere.
 */

import type { DType } from './dtype'
import type { Graph, Tensor } from './graph'
import { linear } from './ops'

/** Spec init of Linear and Embedding weights: N(0, 0.02). */
export const LINEAR_INIT_STD = 0.02

/** Spec init of the projections that write into the residual stream (every `c_proj`): N(0, 0.02/√(2·n_layer)). */
export const residualProjStd = (nLayer: number): number => LINEAR_INIT_STD / Math.sqrt(2 * nLayer)

export interface LinearOptions {
  /** Add `${name}.bias` [out] (zeros). */
  bias: boolean
  /** Standard deviation of the N(0, std) weight init (default 0.02). */
  std?: number
}

/** `${name}.weight` [out, inp] and, with bias, `${name}.bias` [out], on graph g. */
export function linearParams(g: Graph, name: string, out: number, inp: number, opts: LinearOptions & { dtype: DType }): [Tensor, Tensor | null] {
  const w = g.param(`${name}.weight`, [out, inp], { init: { kind: 'normal', std: opts.std ?? LINEAR_INIT_STD }, dtype: opts.dtype })
  const b = opts.bias ? g.param(`${name}.bias`, [out], { init: { kind: 'zeros' }, dtype: opts.dtype }) : null
  return [w, b]
}

/** Linear(in → out) on x's last axis: x · weightᵀ + bias, with parameters from linearParams. */
export function linearLayer(x: Tensor, name: string, out: number, opts: LinearOptions): Tensor {
  const inp = x.shape[x.rank - 1] as number
  const [w, b] = linearParams(x.graph, name, out, inp, { ...opts, dtype: x.dtype })
  return linear(x, w, b)
}
