/** The small layers every block uses: Linear (tensor-core's linearLayer), LayerNorm, the MLP. */
import type { LayerKvCache } from '@moas/attention-schemes'
import { type DType, type Graph, LINEAR_INIT_STD, linearLayer, ops, residualProjStd, type Tensor } from '@moas/tensor-core'
import type { GptConfig } from './config'

/** Spec init: N(0, 0.02) for Linear/Embedding weights; every `c_proj.weight` N(0, 0.02/√(2·n_layer)). */
export const INIT_STD = LINEAR_INIT_STD
export const projStd = (cfg: GptConfig) => residualProjStd(cfg.n_layer)

/** LayerNorm over the last axis, eps 1e-5; weight only unless bias. */
export function layerNorm(x: Tensor, name: string, bias: boolean): Tensor {
  const g = x.graph
  const C = x.shape[x.rank - 1] as number
  const w = g.param(`${name}.weight`, [C], { init: { kind: 'ones' }, dtype: x.dtype })
  const b = bias ? g.param(`${name}.bias`, [C], { init: { kind: 'zeros' }, dtype: x.dtype }) : zeroBias(g, C, x.dtype)
  if (x.dtype === 'float64') return layerNormComposed(x, w, b, 1e-5)
  return ops.layerNorm(x, w, b, 1e-5)
}

/**
 * LayerNorm from elementary ops, for float64 graphs (gradient checks): ONNX Runtime's CPU
 * LayerNormalization keeps its Mean/InvStdDev outputs in float32 (stash_type 1, the only kernel), which
 * the float64 backward pass cannot consume and which would cap the check at float32 precision.
 */
function layerNormComposed(x: Tensor, w: Tensor, b: Tensor, eps: number): Tensor {
  const centered = ops.sub(x, ops.reduceMean(x, [-1], true))
  const variance = ops.reduceMean(ops.mul(centered, centered), [-1], true)
  return ops.add(ops.mul(ops.div(centered, ops.sqrt(ops.add(variance, eps))), w), b)
}

/**
 * A constant zero bias for bias-free LayerNorms: onnxruntime-web's WebGPU kernel of the fused
 * SkipLayerNormalization (what graph optimization makes of Add + LayerNormalization) fails with "Beta must
 * be 1D" when the bias is omitted (the playground's WebGPU training tests). One constant per graph, width
 * and dtype.
 */
const zeroBiases = new WeakMap<Graph, Map<string, Tensor>>()
function zeroBias(g: Graph, C: number, dtype: DType): Tensor {
  const cache = zeroBiases.get(g) ?? new Map<string, Tensor>()
  zeroBiases.set(g, cache)
  const key = `${dtype}:${C}`
  if (!cache.has(key)) cache.set(key, g.constant(new Array<number>(C).fill(0), [C], dtype, 'ln_zero_bias'))
  return cache.get(key)!
}

export interface BuildContext {
  training: boolean
  /** Decoder graphs: this layer's KV cache (the attention takes its heads from it in build order). */
  cache?: LayerKvCache
  /** 'none' = exact (erf) GELU, the spec; 'tanh' only for float64 gradient checks (see gelu). */
  gelu: 'none' | 'tanh'
  /** moas-topk's routed prefill: routed queries per attention call (see GptBuildOptions.routedQueryBlock). */
  routedQueryBlock?: number
  /** moas-kv: how its router learns through the hard choice (see BuildOptions.routerGradient). */
  routerGradient?: 'straight-through' | 'none'
  /** Decoder graphs with cacheOutputs 'levels': this layer's cache of each token's chosen level. */
  levelCache?: LevelCache
}

/** One layer's level cache in a decoder graph (cacheOutputs 'levels'). */
export interface LevelCache {
  /** Per level: cached keys and values [B, level heads, P_j, d] and which entries are held, bool [B, P_j]. */
  past: { key: Tensor; value: Tensor; valid: Tensor }[]
  /** The additive causal and padding mask among the new positions [B, 1, 1, T, T]. */
  mask: Tensor
  /** int64 [1, T]: 0 .. T − 1. */
  querySlots: Tensor
  /** Filled by the layer: every new position's heads at each level [B, level heads, T, d]. */
  written: { key: Tensor; value: Tensor }[]
}

/**
 * GELU: the exact (erf) form of the spec, or the tanh form composed from elementary ops. The tanh form is
 * only for float64 gradient checks: ONNX Runtime has no float64 Erf, and its float64 Gelu kernel is only
 * float32-accurate (~1e-7 relative), which a finite-difference check would see.
 */
export function gelu(x: Tensor, form: 'none' | 'tanh'): Tensor {
  if (form === 'none') return ops.gelu(x, 'none')
  const u = ops.mul(ops.add(x, ops.mul(ops.mul(ops.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI))
  return ops.mul(ops.mul(x, 0.5), ops.add(ops.tanh(u), 1))
}

/** c_proj(gelu(c_fc(x))) with a 4C hidden layer, then dropout. */
export function mlp(x: Tensor, cfg: GptConfig, prefix: string, ctx: BuildContext): Tensor {
  const h = gelu(linearLayer(x, `${prefix}c_fc`, 4 * cfg.n_embd, { bias: cfg.bias }), ctx.gelu)
  return ops.dropout(linearLayer(h, `${prefix}c_proj`, cfg.n_embd, { bias: cfg.bias, std: projStd(cfg) }), cfg.dropout, ctx.training)
}
