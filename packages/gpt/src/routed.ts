/**
 * moas-topk at inference: attention is computed only for the queries routed to each branch.
 *
 * Per branch s: each sequence's positions that chose s, compacted to the front of a [B, n_s] index
 * tensor (a TopK over "chosen first, then by position"; n_s = the largest count in the batch), their normalized inputs gathered, their queries projected, one causalAttention of those n_s
 * queries against the branch's keys/values of ALL positions of their own sequence (a routed query at
 * slot t still sees keys 0..t, and a decode step sees the whole cache: the KV cache of a MoAS model
 * holds every branch), c_proj on the n_s rows, times the token's top-k weight, scattered back.
 *
 * A batch whose rows made different choices is padded per branch to the row with the most routed
 * tokens: the padding rows are real (unchosen) positions whose top-k weight is exactly 0, so they add
 * nothing. At a decode step (T = 1) a branch therefore runs for the whole batch if any row chose it, and
 * not at all when none did (n_s = 0: its tensors are empty; the attention core spells out its reshapes
 * for that case, see causalAttention).
 *
 * Parameters have the same names, shapes and init as the dense path (moasTopKDense), so one checkpoint
 * serves both; tests check that both give the same numbers. Inference only (TopK indices carry no
 * gradient to the choice, and none is needed).
 */
import { causalAttention, type LayerKvCache, schemeDims, schemeProjections, splitHeads, visibilityMask } from '@moas/attention-schemes'
import { switchBalanceLoss, topKGates } from '@moas/routing'
import { ops, type Tensor } from '@moas/tensor-core'
import type { GptConfig } from './config'
import { type AttentionOutput, MOAS_SCHEMES, moasGates, type Scheme, schemeConfig } from './moas'

/** Routed queries per attention call in a prefill with a static length (buildGpt's routedQueryBlock default). */
export const ROUTED_QUERY_BLOCK = 512

export function moasTopKRouted(x: Tensor, cfg: GptConfig, prefix: string, layer: number, cache?: LayerKvCache, block = ROUTED_QUERY_BLOCK): AttentionOutput {
  const p = moasGates(x, cfg, prefix)
  const top = topKGates(p, cfg.moas_top_k!)
  const ys = MOAS_SCHEMES.map((s, i) => {
    // positions that chose branch i: any of the k choices equals i
    const chose = ops.greater(ops.reduceMax(ops.cast(ops.equal(top.indices, i), x.dtype), [-1]), 0.5) // [B, T]
    const positions = routedPositions(chose, `routed_${layer}_${s}`) // [B, n]
    const rows = ops.expand(ops.unsqueeze(positions, [-1]), [x.shape[0], positions.shape[1], x.shape[2]]) // [B, n, C]
    const weight = ops.gatherElements(ops.slice(top.dense, [i], [i + 1], [-1]), ops.unsqueeze(positions, [-1]), 1) // [B, n, 1]
    const out = ops.mul(routedScheme(x, positions, rows, cfg, s, `${prefix}${s}.`, cache, block), weight)
    // Positions are distinct within a row, so a plain scatter (no reduction) puts every row back once.
    // ScatterND moves whole [C] rows by (batch, position); ScatterElements, with one index per value,
    // took 8.5 % of an 8k-token prefill (paper widths) on its own.
    return ops.scatterND(ops.zerosLike(x), rowIndices(positions), out)
  })
  return { y: ops.sum(ys), balance: switchBalanceLoss(p, top.indices), gates: p, chosen: top.indices }
}

/** int64 [B, n, 2]: (batch row, position) of every routed slot, ScatterND's indices into [B, T, C]. */
function rowIndices(positions: Tensor): Tensor {
  const [B] = positions.shape
  const batch = ops.expandLike(ops.unsqueeze(ops.range(ops.dimOf(positions, 0), B), [1]), positions) // [B, n]: b
  return ops.concat([ops.unsqueeze(batch, [-1]), ops.unsqueeze(positions, [-1])], -1)
}

/**
 * int64 [B, n]: per row, the positions where `chose` [B, T] is true in increasing order, then (padding up
 * to n = the largest count in the batch, possibly 0) unchosen positions. `dim` names the data-dependent n.
 */
function routedPositions(chose: Tensor, dim: string): Tensor {
  const T = ops.dimOf(chose, 1)
  const t = ops.cast(ops.range(T, chose.shape[1]), 'float32') // [T]
  // Chosen positions rank first (T - t > 0, earliest highest); unchosen after (-1 - t < 0).
  const order = ops.where(chose, ops.sub(ops.cast(T, 'float32'), t), ops.sub(-1, t))
  const count = ops.reduceMax(ops.reduceSum(ops.cast(chose, 'int64'), [1]), [0], true) // [1]
  const [, positions] = ops.topk(order, { k: count, dim }, 1, true)
  return positions
}

/**
 * One branch for the n routed rows of each sequence: q from the routed rows only, k and v from every
 * position (and the cache), attention in which the query at slot P + pos sees key j iff j <= P + pos (and
 * attention_mask allows it), then c_proj. Parameters as groupedAttention names them, so weights are shared.
 */
function routedScheme(
  x: Tensor,
  positions: Tensor,
  rows: Tensor,
  cfg: GptConfig,
  scheme: Scheme,
  prefix: string,
  cache: LayerKvCache | undefined,
  block: number,
): Tensor {
  const sc = schemeConfig(scheme, cfg)
  const { C, G, R, d } = schemeDims(sc)
  const proj = schemeProjections(x.graph, sc, prefix, x.dtype)
  const [B, n] = positions.shape
  const q = proj.q(ops.gatherElements(x, rows, 1)) // [B, n, C]: routed rows only
  const qg = ops.transpose(ops.reshape(q, [B, n, G, R, d]), [0, 2, 3, 1, 4]) // [B, G, R, n, d]; head h = g·R + r
  const [k, v] = proj.kv(x)
  const kh = splitHeads(k, G, d)
  const vh = splitHeads(v, G, d)
  const past = cache?.extend(kh, vh).past
  const T = x.shape[1]
  const dtype = x.dtype as 'float32' | 'float64' | 'float16'
  let o: Tensor // [B, G, R, n, d]
  if (!cache && typeof T === 'number' && block > 0 && T > block) o = blockedRoutedAttention(qg, kh, vh, positions, T, block, dtype)
  else {
    const slots = cache ? ops.add(positions, ops.sub(ops.dimOf(cache.keyValid, 1), ops.dimOf(x, 1))) : positions // P + position
    const keys = cache ? cache.keyValid : { length: ops.dimOf(x, 1), dim: x.shape[1] }
    const mask = visibilityMask(slots, keys, dtype)
    o = causalAttention(qg, ops.unsqueeze(kh, [2]), ops.unsqueeze(vh, [2]), { dropout: 0, training: false, mask, past })
  }
  return proj.out(ops.reshape(ops.transpose(o, [0, 3, 1, 2, 4]), [B, n, C])) // heads in order h = g·R + r
}

/**
 * A prefill's routed queries in blocks of `block` slots, each attending only to the keys up to the
 * block's last position: a routed query at position t sees keys 0..t, so keys past a block's largest
 * position are masked for all of it, and skipping them halves the work of one call over all T keys
 * (the scores held at once shrink by about T / block as well). The block count is data-dependent, so
 * ceil(T / block) blocks are built (n ≤ T) and the ones past n are empty. Bounds are computed in the
 * graph: block b takes slots [min(b·block, n), min((b+1)·block, n)) and keys [0, 1 + the largest
 * position among them, over the batch). Padding slots (batch > 1) hold unchosen positions in
 * increasing order after the chosen ones, so the bound is a maximum over the block, not its last slot.
 * qg [B, G, R, n, d]; kh, vh [B, G, T, d]; positions int64 [B, n].
 */
function blockedRoutedAttention(
  qg: Tensor,
  kh: Tensor,
  vh: Tensor,
  positions: Tensor,
  T: number,
  block: number,
  dtype: 'float32' | 'float64' | 'float16',
): Tensor {
  const g = qg.graph
  const n = ops.dimOf(positions, 1)
  const label = String(positions.shape[1])
  const at = (v: number) => g.scalar(v, 'int64')
  // One leading 0 so that the reduction for block b, over shifted slots [start, end + 1), is never empty
  // (an empty block reduces over the previous block's last position, or 0): ReduceMax of nothing fails.
  const shifted = ops.concat(
    [ops.constantOfShape(ops.concat([ops.slice(ops.shapeOf(positions), [0], [1], [0]), g.ints([1])], 0), 0, 'int64', [positions.shape[0], 1]), positions],
    1,
  )
  const outs: Tensor[] = []
  for (let b = 0; b * block < T; b++) {
    const start = ops.minimum(at(b * block), n)
    const end = ops.minimum(at((b + 1) * block), n)
    const qDim = `${label}.q${b}`
    const slots = ops.sliceAt(positions, start, end, 1, qDim) // [B, n_b]
    const keyEnd = ops.add(ops.reduceMax(ops.sliceAt(shifted, start, ops.add(end, at(1)), 1, `${label}.r${b}`), [0, 1]), at(1))
    const kDim = `${label}.k${b}`
    const keys = (t: Tensor) => ops.unsqueeze(ops.sliceAt(t, at(0), keyEnd, 2, kDim), [2]) // [B, G, 1, k_b, d]
    const mask = visibilityMask(slots, { length: keyEnd, dim: kDim }, dtype)
    outs.push(causalAttention(ops.sliceAt(qg, start, end, 3, qDim), keys(kh), keys(vh), { dropout: 0, training: false, mask }))
  }
  // The blocks' slot counts add up to n at run time; say so in the shape.
  return ops.reshapeTo(ops.concat(outs, 3), ops.shapeOf(qg), qg.shape)
}
