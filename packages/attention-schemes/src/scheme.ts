/**
 * A grouped causal attention block: MHA (nKvHead = nHead), GQA (nKvHead divides nHead) and MQA
 * (nKvHead = 1) are the same function of the config. Parameters carry their checkpoint names.
 */
import { type DType, type Graph, GraphError, linearParams, ops, residualProjStd, type Tensor } from '@moas/tensor-core'
import { causalAttention, mergeHeads, splitHeads } from './attention'
import type { LayerKvCache } from './kvcache'

export interface SchemeConfig {
  nEmbd: number
  nHead: number
  nKvHead: number
  nLayer: number
  bias: boolean
  dropout: number
}

/** MHA stores q, k, v in one `c_attn` Linear (nanoGPT's layout); GQA/MQA use separate projections. */
export type GroupedAttentionConfig = SchemeConfig & { fusedQkv?: boolean }

/** Checks the config and returns its derived sizes. */
export function schemeDims(cfg: GroupedAttentionConfig): { C: number; H: number; G: number; R: number; d: number } {
  const { nEmbd: C, nHead: H, nKvHead: G } = cfg
  for (const [name, v] of [
    ['nEmbd', C],
    ['nHead', H],
    ['nKvHead', G],
    ['nLayer', cfg.nLayer],
  ] as const)
    if (!(Number.isInteger(v) && v > 0)) throw new GraphError(`attention config: ${name} must be a positive integer, got ${v}`)
  if (C % H !== 0) throw new GraphError(`attention config: nEmbd ${C} is not divisible by nHead ${H}; choose nHead dividing nEmbd`)
  if (H % G !== 0) throw new GraphError(`attention config: nHead ${H} is not divisible by nKvHead ${G}; choose nKvHead dividing nHead`)
  if (cfg.fusedQkv && G !== H) throw new GraphError(`attention config: fusedQkv (c_attn) needs nKvHead = nHead (${H}), got ${G}`)
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) throw new GraphError(`attention config: dropout must be in [0, 1), got ${cfg.dropout}`)
  return { C, H, G, R: H / G, d: C / H }
}

/** The projections of one grouped attention block, with their checkpoint names (see groupedAttention). */
export interface SchemeProjections {
  /** q [.., C], k and v [.., G·d] of the same rows (one fused c_attn GEMM for MHA). */
  qkv(x: Tensor): [Tensor, Tensor, Tensor]
  /** q alone [.., C] (routed queries: only some rows need it). */
  q(x: Tensor): Tensor
  /** k and v alone [.., G·d]. */
  kv(x: Tensor): [Tensor, Tensor]
  /** c_proj [.., C]. */
  out(y: Tensor): Tensor
}

/**
 * The parameters of one grouped attention block on graph g: MHA's fused `c_attn` [3C, C] (nanoGPT's
 * layout) or `q_proj` [C, C], `k_proj` / `v_proj` [G·d, C]; `c_proj` [C, C] with the residual-scaled init.
 */
export function schemeProjections(g: Graph, cfg: GroupedAttentionConfig, prefix: string, dtype: DType): SchemeProjections {
  const { C, G, d } = schemeDims(cfg)
  const opts = { bias: cfg.bias, dtype }
  // Parameters are created in checkpoint order (q/k/v, then c_proj): initParams draws in graph order.
  const cProj = () => {
    const [wo, bo] = linearParams(g, `${prefix}c_proj`, C, C, { ...opts, std: residualProjStd(cfg.nLayer) })
    return (y: Tensor) => ops.linear(y, wo, bo)
  }
  if (cfg.fusedQkv) {
    const [w, b] = linearParams(g, `${prefix}c_attn`, 3 * C, C, opts)
    const part = (j: number) => [ops.slice(w, [j * C], [(j + 1) * C], [0]), b ? ops.slice(b, [j * C], [(j + 1) * C], [0]) : null] as const
    const out = cProj()
    return {
      qkv: (x) => ops.split(ops.linear(x, w, b), [C, C, C], -1) as [Tensor, Tensor, Tensor],
      q: (x) => ops.linear(x, ...part(0)),
      kv: (x) => [ops.linear(x, ...part(1)), ops.linear(x, ...part(2))],
      out,
    }
  }
  const [wq, bq] = linearParams(g, `${prefix}q_proj`, C, C, opts)
  const [wk, bk] = linearParams(g, `${prefix}k_proj`, G * d, C, opts)
  const [wv, bv] = linearParams(g, `${prefix}v_proj`, G * d, C, opts)
  const out = cProj()
  const kv = (x: Tensor): [Tensor, Tensor] => [ops.linear(x, wk, bk), ops.linear(x, wv, bv)]
  return { qkv: (x) => [ops.linear(x, wq, bq), ...kv(x)], q: (x) => ops.linear(x, wq, bq), kv, out }
}

export interface GroupedAttentionOptions {
  training: boolean
  /** Decoder graphs: the layer's KV cache; this block takes its next G heads (see LayerKvCache). */
  cache?: LayerKvCache
}

/**
 * The full attention block on the normalized input x [B, T, C]: q/k/v projections, causalAttention,
 * c_proj and residual dropout. Query head h reads KV head floor(h / (nHead / nKvHead)).
 */
export function groupedAttention(x: Tensor, cfg: GroupedAttentionConfig, prefix: string, opts: GroupedAttentionOptions): Tensor {
  const { C, H, G, R, d } = schemeDims(cfg)
  if (x.rank !== 3 || x.shape[2] !== C) throw new GraphError(`groupedAttention '${prefix}': expects x [B, T, ${C}], got ${x.describe()}`)
  const proj = schemeProjections(x.graph, cfg, prefix, x.dtype)
  const [q, k, v] = proj.qkv(x)
  const [B, T] = x.shape
  // Head h = g·R + r, so a plain reshape groups the query heads by their KV head.
  const qg = ops.reshape(splitHeads(q, H, d), [B, G, R, T, d])
  const kh = splitHeads(k, G, d)
  const vh = splitHeads(v, G, d)
  const y = causalAttention(qg, ops.unsqueeze(kh, [2]), ops.unsqueeze(vh, [2]), {
    dropout: cfg.dropout,
    training: opts.training,
    ...opts.cache?.extend(kh, vh),
  })
  const merged = mergeHeads(ops.reshape(y, [B, H, T, d]))
  return ops.dropout(proj.out(merged), cfg.dropout, opts.training)
}
