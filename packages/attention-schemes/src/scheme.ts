/**
 * A grouped causal attention block: MHA (nKvHead = nHead), GQA (nKvHead divides nHead) and MQA
 * (nKvHead = 1) are the same function of the config. Parameters carry their checkpoint names.
 */
import { GraphError, type Tensor, ops } from '@moas/tensor-core'
import { causalAttention, mergeHeads, splitHeads } from './attention'

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
  for (const [name, v] of [['nEmbd', C], ['nHead', H], ['nKvHead', G], ['nLayer', cfg.nLayer]] as const)
    if (!(Number.isInteger(v) && v > 0)) throw new GraphError(`attention config: ${name} must be a positive integer, got ${v}`)
  if (C % H !== 0) throw new GraphError(`attention config: nEmbd ${C} is not divisible by nHead ${H}; choose nHead dividing nEmbd`)
  if (H % G !== 0) throw new GraphError(`attention config: nHead ${H} is not divisible by nKvHead ${G}; choose nKvHead dividing nHead`)
  if (cfg.fusedQkv && G !== H) throw new GraphError(`attention config: fusedQkv (c_attn) needs nKvHead = nHead (${H}), got ${G}`)
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) throw new GraphError(`attention config: dropout must be in [0, 1), got ${cfg.dropout}`)
  return { C, H, G, R: H / G, d: C / H }
}

/** A Linear layer's weight (and bias) as parameters named `${name}.weight` / `${name}.bias`, on x's graph. */
function linearParams(x: Tensor, name: string, out: number, inp: number, bias: boolean, std: number): [Tensor, Tensor | null] {
  const g = x.graph
  const w = g.param(`${name}.weight`, [out, inp], { init: { kind: 'normal', std }, dtype: x.dtype })
  const b = bias ? g.param(`${name}.bias`, [out], { init: { kind: 'zeros' }, dtype: x.dtype }) : null
  return [w, b]
}

/**
 * The full attention block on the normalized input x [B, T, C]: q/k/v projections, causalAttention,
 * c_proj and residual dropout. Query head h reads KV head floor(h / (nHead / nKvHead)).
 */
export function groupedAttention(x: Tensor, cfg: GroupedAttentionConfig, prefix: string, opts: { training: boolean }): Tensor {
  const { C, H, G, R, d } = schemeDims(cfg)
  if (x.rank !== 3 || x.shape[2] !== C) throw new GraphError(`groupedAttention '${prefix}': expects x [B, T, ${C}], got ${x.describe()}`)
  const std = 0.02
  let q: Tensor, k: Tensor, v: Tensor
  if (cfg.fusedQkv) {
    const [w, b] = linearParams(x, `${prefix}c_attn`, 3 * C, C, cfg.bias, std)
    ;[q, k, v] = ops.split(ops.linear(x, w, b), [C, C, C], -1)
  } else {
    const [wq, bq] = linearParams(x, `${prefix}q_proj`, C, C, cfg.bias, std)
    const [wk, bk] = linearParams(x, `${prefix}k_proj`, G * d, C, cfg.bias, std)
    const [wv, bv] = linearParams(x, `${prefix}v_proj`, G * d, C, cfg.bias, std)
    q = ops.linear(x, wq, bq)
    k = ops.linear(x, wk, bk)
    v = ops.linear(x, wv, bv)
  }
  const [B, T] = x.shape
  // Head h = g·R + r, so a plain reshape groups the query heads by their KV head.
  const qg = ops.reshape(splitHeads(q, H, d), [B, G, R, T, d])
  const kg = ops.unsqueeze(splitHeads(k, G, d), [2])
  const vg = ops.unsqueeze(splitHeads(v, G, d), [2])
  const y = causalAttention(qg, kg, vg, { dropout: cfg.dropout, training: opts.training })
  const merged = mergeHeads(ops.reshape(y, [B, H, T, d]))
  const [wo, bo] = linearParams(x, `${prefix}c_proj`, C, C, cfg.bias, std / Math.sqrt(2 * cfg.nLayer))
  return ops.dropout(ops.linear(merged, wo, bo), cfg.dropout, opts.training)
}
