/**
 * moas-kv (docs/variants.md, "moas-kv"): per token and layer a router picks the level of KV heads that
 * token writes, from the finest (H heads, MHA) to the coarsest (e.g. 1, MQA). A level-G head is the mean
 * of the H/G finest heads it covers (or its own projection, `kv_level_weights: own`); query head h reads,
 * at every past token, the head of that token's level that covers h. The choice is hard in the forward
 * pass; the router learns through a straight-through gradient (see `straightThrough`). A budget loss holds
 * each layer's mean bytes per token at `kv_budget` of MHA's.
 */
import { causalAttention } from '@moas/attention-schemes'
import { schemeRouter } from '@moas/routing'
import { linearLayer, ops, type Tensor } from '@moas/tensor-core'
import type { GptConfig } from './config'
import { type BuildContext, gelu, type LevelCache, projStd } from './layers'
import type { AttentionOutput } from './moas'

/** The training graph's scalar input: the budget's current target (annealed from 1 to kv_budget). */
export const KV_BUDGET_TARGET = 'kv_budget_target'

/**
 * The study controls' input (kv_route 'random' / 'rule'): every position's level index per layer,
 * int64 [n_layer, batch, seq], fed by the trainer in place of the router's choice.
 */
export const KV_ROUTE_LEVELS = 'kv_route_levels'

/** Whether the config is a study control whose levels are fed (KV_ROUTE_LEVELS) rather than routed. */
export const isKvRouteControl = (cfg: GptConfig): boolean => cfg.kv_route !== undefined

/** The budget's target after `updates` updates: linear from 1 to kv_budget over kv_budget_warmup updates. */
export function kvBudgetTarget(cfg: GptConfig, updates: number): number {
  const rho = cfg.kv_budget!
  const warmup = cfg.kv_budget_warmup!
  return warmup === 0 || updates >= warmup ? rho : 1 + (rho - 1) * (updates / warmup)
}

/** Each level's bytes per token as a fraction of the finest level's (MHA's): G / H. */
export const levelCosts = (cfg: GptConfig): number[] => cfg.kv_levels!.map((G) => G / cfg.n_head)

/**
 * One-hot of the router's choice in the forward pass, with the gradient of the soft gates p: z + (p − sg(p)).
 * Straight-through rather than Gumbel-softmax: the forward pass is then exactly the deterministic choice that
 * inference makes (so decoding equals the training forward and the fixtures are exact), and no temperature
 * schedule or sampling noise enters the gradient.
 */
function straightThrough(p: Tensor, chosen: Tensor, levels: number, gradient: 'straight-through' | 'none'): Tensor {
  const hard = ops.oneHot(ops.squeeze(chosen, [-1]), levels, p.dtype)
  return gradient === 'none' ? hard : ops.add(hard, ops.sub(p, ops.stopGradient(p)))
}

/** [B, T, G·d] keys of G heads → [B, T, H, d]: head h reads the level head g = h / (H/G). */
function coverHeads(t: Tensor, G: number, H: number, d: number): Tensor {
  const [B, T] = t.shape
  const perHead = ops.unsqueeze(ops.reshape(t, [B, T, G, d]), [3]) // [B, T, G, 1, d]
  return ops.reshape(ops.expand(perHead, [B, T, G, H / G, d]), [B, T, H, d])
}

/** Level G's keys (or values) from the finest level's [B, T, H·d]: the mean over each group's H/G heads. */
function meanOfHeads(fine: Tensor, G: number, H: number, d: number): Tensor {
  const [B, T] = fine.shape
  return ops.reshape(ops.reduceMean(ops.reshape(fine, [B, T, G, H / G, d]), [3]), [B, T, G * d])
}

/** A control's chosen levels for this layer, [B, T, 1], from the KV_ROUTE_LEVELS input. */
function fedLevels(x: Tensor, cfg: GptConfig, layer: number): Tensor {
  const g = x.graph
  const [B, T] = x.shape
  const all =
    g.inputs.find((t) => t.name === KV_ROUTE_LEVELS) ??
    g.input(KV_ROUTE_LEVELS, 'int64', [cfg.n_layer, B, T], `each position's level index per layer (kv_route ${cfg.kv_route}: fed, not routed)`)
  return ops.transpose(ops.slice(all, [layer], [layer + 1], [0]), [1, 2, 0])
}

export function moasKv(x: Tensor, cfg: GptConfig, prefix: string, ctx: BuildContext, layer: number): AttentionOutput {
  const [B, T] = x.shape
  const C = cfg.n_embd
  const H = cfg.n_head
  const d = C / H
  const levels = cfg.kv_levels!
  const L = levels.length

  let p: Tensor // [B, T, L]: the gates (a control's are its one-hot choice)
  let chosen: Tensor // [B, T, 1]
  let z: Tensor // [B, T, L]: one-hot of the choice (with the router's straight-through gradient)
  if (isKvRouteControl(cfg)) {
    chosen = fedLevels(x, cfg, layer)
    z = ops.oneHot(ops.squeeze(chosen, [-1]), L, x.dtype)
    p = z
  } else {
    p = ops.softmax(schemeRouter(x, { nEmbd: C, hidden: cfg.router_hidden!, nOut: L, activation: (h) => gelu(h, ctx.gelu) }, `${prefix}router.`), -1)
    chosen = ops.topk(p, 1, -1, true)[1] // ties go to the finer level
    z = straightThrough(p, chosen, L, ctx.routerGradient ?? 'straight-through')
  }

  const q = ops.transpose(ops.reshape(linearLayer(x, `${prefix}q_proj`, C, { bias: cfg.bias }), [B, T, H, d]), [0, 2, 1, 3]) // [B, H, T, d]
  const fine = { k: linearLayer(x, `${prefix}k_proj`, C, { bias: cfg.bias }), v: linearLayer(x, `${prefix}v_proj`, C, { bias: cfg.bias }) }
  // each level's heads, built once: [B, T, Lᵢ·d] (the finest is the projection itself)
  const levelOf = (which: 'k' | 'v', i: number): Tensor => {
    const G = levels[i]
    if (i === 0) return fine[which]
    if (cfg.kv_level_weights === 'own') return linearLayer(x, `${prefix}levels.${i}.${which}_proj`, G * d, { bias: cfg.bias })
    return meanOfHeads(fine[which], G, H, d)
  }
  const level = { k: levels.map((_, i) => levelOf('k', i)), v: levels.map((_, i) => levelOf('v', i)) }
  // The token's keys as every query head reads them: Σ_i z_i · (level i's head covering h); exactly the
  // chosen level's in the forward pass.
  const written = (which: 'k' | 'v') =>
    ops.transpose(
      ops.sum(levels.map((G, i) => ops.mul(coverHeads(level[which][i], G, H, d), ops.unsqueeze(ops.slice(z, [i], [i + 1], [-1]), [-1])))),
      [0, 2, 1, 3],
    ) // [B, H, T, d]
  const keys = written('k')
  const values = written('v')
  let o: Tensor // [B, H, 1, T, d]
  if (ctx.levelCache) {
    const lc = ctx.levelCache
    const heads = (which: 'k' | 'v', i: number) => ops.transpose(ops.reshape(level[which][i], [B, T, levels[i], d]), [0, 2, 1, 3]) // [B, G, T, d]
    lc.written.push(...levels.map((_, i) => ({ key: heads('k', i), value: heads('v', i) })))
    o = attendLevelCache(q, keys, values, lc, levels, H, d)
  } else {
    const attn = { dropout: cfg.dropout, training: ctx.training, ...ctx.cache?.extend(keys, values) }
    o = causalAttention(ops.unsqueeze(q, [2]), ops.unsqueeze(keys, [2]), ops.unsqueeze(values, [2]), attn)
  }
  const y = linearLayer(ops.reshape(ops.transpose(o, [0, 3, 1, 2, 4]), [B, T, C]), `${prefix}c_proj`, C, { bias: cfg.bias, std: projStd(cfg) })
  return { y: ops.dropout(y, cfg.dropout, ctx.training), balance: budgetLoss(z, cfg, ctx), gates: p, chosen }
}

/**
 * |m − target|, m = this layer's mean bytes per token over the batch (a fraction of MHA's) with the
 * straight-through weights: its value is the measured mean of the hard choices, its gradient moves the gates.
 * Two-sided: a layer that spends less than its budget is pulled back up as well, so every model of a study
 * holds the bytes it was given and its loss is compared with the static variants at equal bytes.
 */
function budgetLoss(z: Tensor, cfg: GptConfig, ctx: BuildContext): Tensor {
  const g = z.graph
  const costs = g.constant(levelCosts(cfg), [cfg.kv_levels!.length], z.dtype, 'kv_level_costs')
  const mean = ops.reduceMean(ops.reduceSum(ops.mul(z, costs), [-1]), [0, 1]) // scalar
  const target = ctx.training
    ? (g.inputs.find((t) => t.name === KV_BUDGET_TARGET) ?? g.input(KV_BUDGET_TARGET, z.dtype, [], "the budget's target this update (1 annealed to kv_budget)"))
    : g.scalar(cfg.kv_budget!, z.dtype)
  const over = ops.sub(mean, target)
  const sign = ops.sub(ops.mul(ops.cast(ops.greater(over, 0), z.dtype), 2), 1) // no gradient: a bool cast
  return ops.mul(over, sign)
}

/**
 * The new positions' queries against the level cache and against themselves: every held entry of level j
 * (G heads) is read by the H/G query heads each of its heads covers, the new positions causally among
 * themselves. One softmax over all of it (the composed core, with the level heads repeated over their
 * query heads for the call: the cache itself holds only what each token wrote).
 */
function attendLevelCache(q: Tensor, keys: Tensor, values: Tensor, lc: LevelCache, levels: readonly number[], H: number, d: number): Tensor {
  const g = q.graph
  const B = q.shape[0]
  const repeat = (t: Tensor, G: number) => {
    const P = t.shape[2]
    return ops.reshape(ops.expand(ops.unsqueeze(t, [2]), [B, G, H / G, P, d]), [B, H, P, d]) // head h reads level head h / (H/G)
  }
  // held entries are visible to every new position; padding entries to none
  const everyQuery = ops.mul(ops.cast(ops.unsqueeze(lc.querySlots, [1, 2, 4]), q.dtype), 0) // [1, 1, 1, T, 1] zeros
  const heldMask = (valid: Tensor) => ops.add(ops.where(ops.unsqueeze(valid, [1, 2, 3]), g.scalar(0, q.dtype), g.scalar(-Infinity, q.dtype)), everyQuery)
  const k = ops.concat([...lc.past.map((p, j) => repeat(p.key, levels[j])), keys], 2)
  const v = ops.concat([...lc.past.map((p, j) => repeat(p.value, levels[j])), values], 2)
  const mask = ops.concat([...lc.past.map((p) => heldMask(p.valid)), lc.mask], -1) // [B, 1, 1, T, held + T]
  return causalAttention(ops.unsqueeze(q, [2]), ops.unsqueeze(k, [2]), ops.unsqueeze(v, [2]), { dropout: 0, training: false, mask })
}
