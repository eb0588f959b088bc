/** The small layers every block uses: Linear with checkpoint-named parameters, LayerNorm, the MLP. */
import { type DType, type Graph, type Tensor, ops } from '@moas/tensor-core'
import type { GptConfig } from './config'

/** Spec init: N(0, 0.02) for Linear/Embedding weights; every `c_proj.weight` N(0, 0.02/√(2·n_layer)). */
export const INIT_STD = 0.02
export const projStd = (cfg: GptConfig) => INIT_STD / Math.sqrt(2 * cfg.n_layer)

/** Linear(in → out) on x's last axis with parameters `${name}.weight` [out, in] (+ `${name}.bias`). */
export function linear(x: Tensor, name: string, out: number, bias: boolean, std = INIT_STD): Tensor {
  const g = x.graph
  const inp = x.shape[x.rank - 1] as number
  const w = g.param(`${name}.weight`, [out, inp], { init: { kind: 'normal', std }, dtype: x.dtype })
  const b = bias ? g.param(`${name}.bias`, [out], { init: { kind: 'zeros' }, dtype: x.dtype }) : null
  return ops.linear(x, w, b)
}

/** LayerNorm over the last axis, eps 1e-5; weight only unless bias. */
export function layerNorm(x: Tensor, name: string, bias: boolean): Tensor {
  const g = x.graph
  const C = x.shape[x.rank - 1] as number
  const w = g.param(`${name}.weight`, [C], { init: { kind: 'ones' }, dtype: x.dtype })
  const b = bias ? g.param(`${name}.bias`, [C], { init: { kind: 'zeros' }, dtype: x.dtype }) : zeroBias(x.graph, C, x.dtype)
  return ops.layerNorm(x, w, b, 1e-5)
}

/**
 * A constant zero bias for bias-free LayerNorms. ONNX Runtime 1.30 (CPU, optimization level 'extended'
 * or 'all') crashes the process with a segmentation fault on a LayerNormalization whose optional bias
 * input is omitted, so we always pass one. One shared constant per graph, width and dtype.
 */
const zeroBiases = new WeakMap<Graph, Map<string, Tensor>>()
function zeroBias(g: Graph, C: number, dtype: DType): Tensor {
  let cache = zeroBiases.get(g)
  if (!cache) zeroBiases.set(g, (cache = new Map()))
  const key = `${dtype}:${C}`
  if (!cache.has(key)) cache.set(key, g.constant(new Array<number>(C).fill(0), [C], dtype, 'ln_zero_bias'))
  return cache.get(key)!
}

export interface BuildContext {
  training: boolean
  /** 'none' = exact (erf) GELU, the spec; 'tanh' only for float64 gradient checks (no float64 Erf kernel). */
  gelu: 'none' | 'tanh'
}

/** c_proj(gelu(c_fc(x))) with a 4C hidden layer, then dropout. */
export function mlp(x: Tensor, cfg: GptConfig, prefix: string, ctx: BuildContext): Tensor {
  const h = ops.gelu(linear(x, `${prefix}c_fc`, 4 * cfg.n_embd, cfg.bias), ctx.gelu)
  return ops.dropout(linear(h, `${prefix}c_proj`, cfg.n_embd, cfg.bias, projStd(cfg)), cfg.dropout, ctx.training)
}
