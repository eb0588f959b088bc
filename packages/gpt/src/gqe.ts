/**
 * GQE, grouped query experts (docs/variants.md, "GQE"): H query heads in G groups of M experts; group g
 * shares KV head g. Per token and group a router picks the top-k experts; only the selected query
 * vectors are gathered into k·G slots (one dense q projection, one one-hot selection) and attend in ONE
 * causalAttention call, plus an always-on shared head. Never all H heads then masked.
 */
import { type CachePast, causalAttention, type LayerKvCache } from '@moas/attention-schemes'
import { linearRouter, switchBalanceLoss } from '@moas/routing'
import { linearLayer, ops, type Tensor } from '@moas/tensor-core'
import type { GptConfig } from './config'
import { type BuildContext, projStd } from './layers'
import type { AttentionOutput } from './moas'

/** What the GQE ablations change: which slots feed c_proj (the registry row gives each variant's). */
export interface GqeMode {
  /** Σ w[g,r]·o[g,r], w renormalized over all k·G selections. */
  weightedSlot: boolean
  /** Hard slots times their raw gates ("weighted concat"). */
  scaleByGate: boolean
  /** The always-on shared head. */
  shared: boolean
}

export function gqe(x: Tensor, cfg: GptConfig, mode: GqeMode, prefix: string, ctx: BuildContext): AttentionOutput {
  const [B, T] = x.shape
  const H = cfg.n_head
  const G = cfg.n_kv_head!
  const M = H / G
  const k = cfg.gqe_top_k!
  const d = cfg.n_embd / H

  const q = ops.reshape(linearLayer(x, `${prefix}q_proj`, H * d, { bias: cfg.bias }), [B, T, G, M, d]) // head h = g·M + m
  const kv = (name: string) => ops.transpose(ops.reshape(linearLayer(x, `${prefix}${name}`, G * d, { bias: cfg.bias }), [B, T, G, d]), [0, 2, 1, 3])
  const keys = kv('k_proj') // [B, G, T, d]: the new positions (a cache's past goes to the core apart)
  const values = kv('v_proj')
  const attn = { dropout: cfg.dropout, training: ctx.training, ...ctx.cache?.extend(keys, values) }

  // Router: per group a softmax over its M experts; top-k in descending gate order (ties: lowest index).
  const logits = ops.reshape(linearRouter(x, { nEmbd: cfg.n_embd, nOut: G * M, bias: cfg.bias }, `${prefix}router`), [B, T, G, M])
  const p = ops.softmax(logits, -1) // p[g, m]
  const [pSel, experts] = ops.topk(p, k, -1, true) // p̃[g, r], e[g, r]: [B, T, G, k]

  // Gather the selected query vectors into slots and attend: slot (g, r) reads KV head g.
  // A one-hot product, not GatherElements: ONNX Runtime Web's WebGPU GatherElements returns wrong values for
  // this gather (docs/browser-matrix.md); products with exact 0 and 1 summed give the same values bit for bit.
  const pick = ops.cast(ops.oneHot(experts, M, 'float32'), q.dtype) // [B, T, G, k, M]
  const selected = ops.reduceSum(ops.mul(ops.unsqueeze(pick, [-1]), ops.unsqueeze(q, [3])), [4]) // [B, T, G, k, d]
  const qSlots = ops.transpose(selected, [0, 2, 3, 1, 4]) // [B, G, k, T, d]
  const kvHeads = (t: Tensor) => ops.unsqueeze(t, [2]) // [B, G, 1, Tk, d]
  const o = ops.transpose(causalAttention(qSlots, kvHeads(keys), kvHeads(values), attn), [0, 3, 1, 2, 4]) // [B, T, G, k, d]

  const parts: Tensor[] = []
  const hard = mode.scaleByGate ? ops.mul(o, ops.unsqueeze(pSel, [-1])) : o
  parts.push(ops.reshape(hard, [B, T, G * k * d])) // o[0,0] … o[0,k-1], o[1,0], …
  if (mode.weightedSlot) {
    const w = ops.div(pSel, ops.reduceSum(pSel, [2, 3], true)) // jointly over all k·G selections
    parts.push(ops.reduceSum(ops.mul(ops.unsqueeze(w, [-1]), o), [2, 3])) // [B, T, d]
  }
  if (mode.shared) parts.push(sharedHead(x, cfg, prefix, keys, values, attn.past, cfg.gqe_shared_kv === 'own', ctx.training, ctx.cache))
  const y = linearLayer(ops.concat(parts, -1), `${prefix}c_proj`, cfg.n_embd, { bias: cfg.bias, std: projStd(cfg) })
  return { y: ops.dropout(y, cfg.dropout, ctx.training), balance: groupSwitchLoss(p, experts, G), gates: p, chosen: experts }
}

/**
 * The always-on head: its own query; keys/values from KV head 0 ("kv0", cached with the group heads) or
 * its own projections ("own", the layer's last cached head).
 */
function sharedHead(
  x: Tensor,
  cfg: GptConfig,
  prefix: string,
  keys: Tensor,
  values: Tensor,
  groupPast: CachePast | undefined,
  ownKv: boolean,
  training: boolean,
  cache: LayerKvCache | undefined,
): Tensor {
  const [B, T] = x.shape
  const d = cfg.n_embd / cfg.n_head
  const head = (t: Tensor) => ops.unsqueeze(t, [1]) // [B, T, d] -> [B, 1, T, d]
  const headZero = (t: Tensor) => ops.slice(t, [0], [1], [1]) // KV head 0
  let ks = headZero(keys) // [B, 1, T, d]
  let vs = headZero(values)
  // KV head 0 of the group call's past; a kernel that joins past and new takes head 0 of the group
  // call's join (the same tensor the group heads read) rather than joining again.
  const groupJoin = groupPast?.join
  const past: CachePast | undefined = groupPast && {
    key: headZero(groupPast.key),
    value: headZero(groupPast.value),
    ...(groupJoin
      ? {
          join: () => {
            const j = groupJoin(ops.unsqueeze(keys, [2]), ops.unsqueeze(values, [2]))
            return { k: headZero(j.k), v: headZero(j.v) }
          },
        }
      : {}),
  }
  let attn = { dropout: cfg.dropout, training, ...cache?.coreOptions, ...(past ? { past } : {}) }
  if (ownKv) {
    ks = head(linearLayer(x, `${prefix}shared_k_proj`, d, { bias: cfg.bias }))
    vs = head(linearLayer(x, `${prefix}shared_v_proj`, d, { bias: cfg.bias }))
    attn = { dropout: cfg.dropout, training, ...cache?.extend(ks, vs) }
  }
  const qs = ops.unsqueeze(linearLayer(x, `${prefix}shared_q_proj`, d, { bias: cfg.bias }), [1, 2]) // [B, 1, 1, T, d]: one group, one query head
  const o = causalAttention(qs, ops.unsqueeze(ks, [2]), ops.unsqueeze(vs, [2]), attn)
  return ops.reshape(o, [B, T, d])
}

/** Switch loss per group (S = M experts, the k selections as choices), averaged over the G groups. */
function groupSwitchLoss(p: Tensor, experts: Tensor, G: number): Tensor {
  const group = (t: Tensor, g: number) => ops.slice(t, [g], [g + 1], [2])
  const losses = [...Array(G).keys()].map((g) => switchBalanceLoss(group(p, g), group(experts, g)))
  return ops.mul(ops.sum(losses), 1 / G)
}
