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
import { type LayerKvCache, causalAttention, schemeDims, schemeProjections, splitHeads, visibilityMask } from '@moas/attention-schemes'
import { switchBalanceLoss, topKGates } from '@moas/routing'
import { type Tensor, ops } from '@moas/tensor-core'
import { type GptConfig, MOAS_SCHEMES } from './config'
import { type AttentionOutput, type Scheme, moasGates, schemeConfig } from './moas'

export function moasTopKRouted(x: Tensor, cfg: GptConfig, prefix: string, layer: number, cache?: LayerKvCache): AttentionOutput {
  const p = moasGates(x, cfg, prefix)
  const top = topKGates(p, cfg.moas_top_k!)
  const ys = MOAS_SCHEMES.map((s, i) => {
    // positions that chose branch i: any of the k choices equals i
    const chose = ops.greater(ops.reduceMax(ops.cast(ops.equal(top.indices, i), x.dtype), [-1]), 0.5) // [B, T]
    const positions = routedPositions(chose, `routed_${layer}_${s}`) // [B, n]
    const rows = ops.expand(ops.unsqueeze(positions, [-1]), [x.shape[0], positions.shape[1], x.shape[2]]) // [B, n, C]
    const weight = ops.gatherElements(ops.slice(top.dense, [i], [i + 1], [-1]), ops.unsqueeze(positions, [-1]), 1) // [B, n, 1]
    const out = ops.mul(routedScheme(x, positions, rows, cfg, s, `${prefix}${s}.`, cache), weight)
    // Positions are distinct within a row, so a plain scatter (no reduction) puts every row back once.
    return ops.scatterElements(ops.zerosLike(x), rows, out, 1)
  })
  return { y: ops.sum(ys), balance: switchBalanceLoss(p, top.indices), gates: p, chosen: top.indices }
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
function routedScheme(x: Tensor, positions: Tensor, rows: Tensor, cfg: GptConfig, scheme: Scheme, prefix: string, cache?: LayerKvCache): Tensor {
  const sc = schemeConfig(scheme, cfg)
  const { C, G, R, d } = schemeDims(sc)
  const proj = schemeProjections(x.graph, sc, prefix, x.dtype)
  const [B, n] = positions.shape
  const q = proj.q(ops.gatherElements(x, rows, 1)) // [B, n, C]: routed rows only
  const qg = ops.transpose(ops.reshape(q, [B, n, G, R, d]), [0, 2, 3, 1, 4]) // [B, G, R, n, d]; head h = g·R + r
  const [k, v] = proj.kv(x)
  let kh = splitHeads(k, G, d)
  let vh = splitHeads(v, G, d)
  if (cache) ({ keys: kh, values: vh } = cache.extend(kh, vh))
  const slots = cache ? ops.add(positions, ops.sub(ops.dimOf(cache.keyValid, 1), ops.dimOf(x, 1))) : positions // P + position
  const keys = cache ? cache.keyValid : { length: ops.dimOf(x, 1), dim: x.shape[1] }
  const mask = visibilityMask(slots, keys, x.dtype as 'float32' | 'float64' | 'float16')
  const o = causalAttention(qg, ops.unsqueeze(kh, [2]), ops.unsqueeze(vh, [2]), { dropout: 0, training: false, mask }) // [B, G, R, n, d]
  return proj.out(ops.reshape(ops.transpose(o, [0, 3, 1, 2, 4]), [B, n, C])) // heads in order h = g·R + r
}
