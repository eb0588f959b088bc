/**
 * moas-topk at inference: attention is computed only for the queries routed to each branch.
 *
 * Per branch s: the positions P_s of the tokens that chose s (NonZero), their normalized inputs gathered,
 * their queries projected, one attention of those n_s queries against the branch's keys/values of ALL
 * T tokens (a routed query at position t still sees keys 0..t; the KV cache of a MoAS model holds every
 * branch), c_proj on the n_s rows, times the token's top-k weight, scattered back to the T rows. The
 * dense formulation (moasTopKDense) gives the same numbers; tests check it.
 *
 * Batch 1 only: each sequence routes a different number of tokens to each branch, so a batch of them
 * is not a rectangular tensor. Parameters have the same names, shapes and init as the dense path, so one
 * checkpoint serves both. Inference only: NonZero has no gradient (and none is needed).
 */
import { switchBalanceLoss, topKGates } from '@moas/routing'
import { GraphError, type Tensor, ops } from '@moas/tensor-core'
import { type GptConfig, MOAS_SCHEMES } from './config'
import { INIT_STD, projStd } from './layers'
import { type AttentionOutput, type Scheme, kvHeadsOf, moasGates } from './moas'

export function moasTopKRouted(x: Tensor, cfg: GptConfig, prefix: string, layer: number): AttentionOutput {
  const [B, T, C] = x.shape as [number | string, number | string, number]
  if (B !== 1) throw new GraphError(`moas-topk routed inference needs batch 1 (a static 1), got batch ${B}; build with batch: 1, or use the dense path (routedTopK: false)`)
  const p = moasGates(x, cfg, prefix)
  const top = topKGates(p, cfg.moas_top_k!)
  const rows = ops.reshape(x, [T, C]) // the one sequence: [T, C]
  const weights = ops.reshape(top.dense, [T, MOAS_SCHEMES.length])
  const g = x.graph
  const zero = g.constant([0], [1, 1], x.dtype, 'zero_weight')
  const ys = MOAS_SCHEMES.map((s, i) => {
    // positions that chose branch i: any of the k choices equals i
    const chose = ops.greater(ops.reduceMax(ops.cast(ops.equal(top.indices, i), x.dtype), [-1]), 0.5) // [1, T]
    // One padding row keeps every tensor non-empty when no token chose branch i (ONNX Runtime 1.30's
    // optimized CPU kernels die with SIGFPE on empty inputs): it computes position 0 and is weighted by
    // an appended zero (gather index -1), so it adds exactly 0.
    const routed = nonZeroPositions(ops.reshape(chose, [T]), `routed_${layer}_${s}`)
    const positions = ops.concat([routed, g.ints([0])], 0) // [n_s + 1]
    const weightRows = ops.concat([ops.slice(weights, [i], [i + 1], [1]), zero], 0) // [T + 1, 1]
    const w = ops.gather(weightRows, ops.concat([routed, g.ints([-1])], 0)) // [n_s + 1, 1]
    const out = ops.mul(routedScheme(rows, positions, cfg, s, `${prefix}${s}.`), w) // [n_s + 1, C]
    return ops.scatterND(ops.zerosLike(rows), ops.unsqueeze(positions, [-1]), out, 'add') // back to [T, C]
  })
  const y = ops.reshape(ops.sum(ys), [B, T, C])
  return { y, balance: switchBalanceLoss(p, top.indices), gates: p, chosen: top.indices }
}

/** int64 [n] positions where a bool [T] is true (ONNX NonZero); `dim` names the data-dependent size n. */
function nonZeroPositions(mask: Tensor, dim: string): Tensor {
  const [nz] = mask.graph.addNode('NonZero', [mask], [{ dtype: 'int64', shape: [1, dim] }])
  return ops.reshape(nz, [dim])
}

/**
 * One branch for the n routed rows: q from the routed rows only, k and v from all T rows, attention with
 * key j visible to the query at position P[i] iff j <= P[i], then c_proj. Parameters as groupedAttention
 * names them (mha: fused `c_attn` [3C, C]; gqa/mqa: q_proj, k_proj, v_proj), so weights are shared.
 */
function routedScheme(rows: Tensor, positions: Tensor, cfg: GptConfig, scheme: Scheme, prefix: string): Tensor {
  const g = rows.graph
  const [T, C] = rows.shape as [number | string, number]
  const H = cfg.n_head
  const G = kvHeadsOf(scheme, cfg)
  const d = C / H
  const param = (name: string, shape: number[], std: number | null) =>
    g.param(`${prefix}${name}`, shape, { init: std === null ? { kind: 'zeros' } : { kind: 'normal', std }, dtype: rows.dtype })
  const weightAndBias = (name: string, out: number, std = INIT_STD) => [param(`${name}.weight`, [out, C], std), cfg.bias ? param(`${name}.bias`, [out], null) : null] as const

  // [wq, bq], [wk, bk], [wv, bv]: slices of the fused c_attn for mha
  let proj: (readonly [Tensor, Tensor | null])[]
  if (scheme === 'mha') {
    const [w, b] = weightAndBias('c_attn', 3 * C)
    proj = [0, 1, 2].map((j) => [ops.slice(w, [j * C], [(j + 1) * C], [0]), b ? ops.slice(b, [j * C], [(j + 1) * C], [0]) : null] as const)
  } else proj = [weightAndBias('q_proj', C), weightAndBias('k_proj', G * d), weightAndBias('v_proj', G * d)]

  const n = positions.shape[0]
  const q = ops.linear(ops.gather(rows, positions), proj[0][0], proj[0][1]) // [n, C]: routed rows only
  const heads = (t: Tensor, rowsDim: number | string, groups: number, r: number) =>
    ops.transpose(ops.reshape(t, [rowsDim, groups, r, d]), [1, 2, 0, 3]) // [groups, r, rows, d]
  const qh = heads(ops.mul(q, 1 / Math.sqrt(d)), n, G, H / G) // head h = g·R + r reads KV head g
  const kh = heads(ops.linear(rows, proj[1][0], proj[1][1]), T, G, 1) // [G, 1, T, d]
  const vh = heads(ops.linear(rows, proj[2][0], proj[2][1]), T, G, 1)

  const keyPos = ops.range(ops.dimOf(rows, 0), T)
  const future = ops.less(ops.unsqueeze(positions, [1]), ops.unsqueeze(keyPos, [0])) // [n, T]: P[i] < j
  const scores = ops.add(ops.matmul(qh, ops.transpose(kh, [0, 1, 3, 2])), ops.where(future, g.scalar(-Infinity, rows.dtype), g.scalar(0, rows.dtype)))
  const o = ops.matmul(ops.softmax(scores, -1), vh) // [G, R, n, d]
  const merged = ops.reshape(ops.transpose(o, [2, 0, 1, 3]), [n, C]) // [n, H·d], heads in order
  const [wo, bo] = weightAndBias('c_proj', C, projStd(cfg))
  return ops.linear(merged, wo, bo)
}
