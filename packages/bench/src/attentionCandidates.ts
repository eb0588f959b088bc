/**
 * The attention-core candidates issue 9 names, beside the two kernels @moas/attention-schemes ships
 * (composedAttention, memoryEfficientAttention = GroupQueryAttention's tiled path), built here only to be
 * measured (`pnpm bench --bench attention-core`) and checked against the composed reference
 * (attentionCandidates.test.ts). Each is an AttentionKernel for the plain causal square (no mask, no KV
 * cache, inference): q [B, G, R, T, d], k, v [B, G, 1, T, d] → [B, G, R, T, d].
 *
 * - gqa-naive: GroupQueryAttention without its present outputs, the op's one-GEMM path (B·N·S·T scores).
 * - onnx-attention: the ONNX opset-23 `Attention` op, is_causal (the graph declares opset 23).
 * - query-blocked: standard ops, one query block of `block` rows at a time against the keys up to its
 *   diagonal (future key blocks never computed); an exact softmax per block, so memory is one block's
 *   [R·block, T] scores per group.
 * - tiled-online: standard ops, query blocks × key blocks with an online softmax (running max and sum,
 *   rescaled accumulator), fully masked tiles skipped: what a flash kernel does, as a graph.
 * The blocked ones unroll a block grid fixed at build time, so T must be static and a multiple of `block`.
 */
import type { AttentionKernel } from '@moas/attention-schemes'
import { attr, type Dim, ops, type Tensor } from '@moas/tensor-core'

export const CANDIDATE_KERNELS = ['gqa-naive', 'onnx-attention', 'query-blocked', 'tiled-online'] as const
export type CandidateKernel = (typeof CANDIDATE_KERNELS)[number]

function staticT(q: Tensor, block: number, name: string): number {
  const T = q.shape[3]
  if (typeof T !== 'number' || T % block) throw new Error(`${name}: needs a static T that is a multiple of the block (${block}), got ${String(T)}`)
  return T
}

const gqaNaive: AttentionKernel = (q, k, v) => {
  const g = q.graph
  const [B, G, R, T, d] = q.shape as [Dim, number, number, Dim, number]
  const rows = (t: Tensor, n: number) =>
    ops.reshape(ops.transpose(ops.reshape(t, [t.shape[0], n, t.shape[3], d]), [0, 2, 1, 3]), [t.shape[0], t.shape[3], n * d])
  const total = ops.cast(ops.dimOf(k, 3), 'int32')
  const batch = ops.slice(ops.shapeOf(q), [0], [1], [0])
  const [seqlens] = g.addNode('Expand', [ops.unsqueeze(ops.sub(total, g.scalar(1, 'int32')), [0]), batch], [{ dtype: 'int32', shape: [B] }])
  // Only the output wired: ONNX Runtime 1.30 then takes the one-GEMM path (all scores at once).
  const [out] = g.addNode(
    'GroupQueryAttention',
    [rows(q, G * R), rows(k, G), rows(v, G), null, null, seqlens, total],
    [{ dtype: q.dtype, shape: [B, T, G * R * d] }],
    { num_heads: attr.int(G * R), kv_num_heads: attr.int(G) },
    'com.microsoft',
  )
  return ops.reshape(ops.transpose(ops.reshape(out, [B, T, G * R, d]), [0, 2, 1, 3]), [B, G, R, T, d])
}

const onnxAttention: AttentionKernel = (q, k, v) => {
  const g = q.graph
  g.opset = Math.max(g.opset, 23)
  const [B, G, R, T, d] = q.shape as [Dim, number, number, Dim, number]
  // 4-D inputs [B, heads, T, d]: the op reads the head counts from the shapes; query head h reads KV head
  // floor(h / R), which is the grouped layout's order (G major, R minor).
  const [y] = g.addNode(
    'Attention',
    [ops.reshape(q, [B, G * R, T, d]), ops.reshape(k, [B, G, T, d]), ops.reshape(v, [B, G, T, d])],
    [{ dtype: q.dtype, shape: [B, G * R, T, d] }],
    { is_causal: attr.int(1) },
  )
  return ops.reshape(y, [B, G, R, T, d])
}

function queryBlocked(block: number): AttentionKernel {
  return (q, k, v) => {
    const T = staticT(q, block, 'query-blocked')
    const g = q.graph
    const [B, G, R, , d] = q.shape as [Dim, number, number, number, number]
    const diag = ops.causalMask(q, block) // the diagonal tile's [b, b] additive mask
    const qs = ops.mul(q, 1 / Math.sqrt(d))
    const outs: Tensor[] = []
    for (let i = 0; i < T / block; i++) {
      const keys = (i + 1) * block
      const qi = ops.reshape(ops.slice(qs, [i * block], [keys], [3]), [B, G, R * block, d])
      const ki = ops.reshape(ops.slice(k, [0], [keys], [3]), [B, G, keys, d])
      const vi = ops.reshape(ops.slice(v, [0], [keys], [3]), [B, G, keys, d])
      const scores = ops.reshape(ops.matmul(qi, ops.transpose(ki, [0, 1, 3, 2])), [B, G, R, block, keys])
      // Keys before the block are all visible: zeros, then the diagonal tile's triangle.
      const mask = i === 0 ? diag : ops.concat([ops.constantOfShape(g.ints([block, i * block]), 0, q.dtype, [block, i * block]), diag], 1)
      const probs = ops.reshape(ops.softmax(ops.add(scores, mask), -1), [B, G, R * block, keys])
      outs.push(ops.reshape(ops.matmul(probs, vi), [B, G, R, block, d]))
    }
    return outs.length === 1 ? outs[0] : ops.concat(outs, 3)
  }
}

function tiledOnline(block: number): AttentionKernel {
  return (q, k, v) => {
    const T = staticT(q, block, 'tiled-online')
    const [B, G, R, , d] = q.shape as [Dim, number, number, number, number]
    const diag = ops.causalMask(q, block) // the diagonal tile's [b, b] additive mask
    const qs = ops.mul(q, 1 / Math.sqrt(d))
    const tile = (t: Tensor, j: number) => ops.reshape(ops.slice(t, [j * block], [(j + 1) * block], [3]), [B, G, block, d])
    const outs: Tensor[] = []
    for (let i = 0; i < T / block; i++) {
      const qi = ops.reshape(ops.slice(qs, [i * block], [(i + 1) * block], [3]), [B, G, R * block, d])
      let m: Tensor | null = null
      let l: Tensor | null = null
      let acc: Tensor | null = null
      for (let j = 0; j <= i; j++) {
        let s = ops.matmul(qi, ops.transpose(tile(k, j), [0, 1, 3, 2])) // [B, G, R·b, b]
        if (j === i) s = ops.reshape(ops.add(ops.reshape(s, [B, G, R, block, block]), diag), [B, G, R * block, block])
        const sMax = ops.reduceMax(s, [-1], true)
        const vj = tile(v, j)
        if (!m || !l || !acc) {
          const p = ops.exp(ops.sub(s, sMax))
          ;[m, l, acc] = [sMax, ops.reduceSum(p, [-1], true), ops.matmul(p, vj)]
          continue
        }
        const mNew = ops.maximum(m, sMax)
        const correction = ops.exp(ops.sub(m, mNew))
        const p = ops.exp(ops.sub(s, mNew))
        l = ops.add(ops.mul(l, correction), ops.reduceSum(p, [-1], true))
        acc = ops.add(ops.mul(acc, correction), ops.matmul(p, vj))
        m = mNew
      }
      outs.push(ops.reshape(ops.div(acc!, l!), [B, G, R, block, d]))
    }
    return outs.length === 1 ? outs[0] : ops.concat(outs, 3)
  }
}

/** The candidate `name` as a kernel (`block`: the blocked candidates' tile size). */
export function candidateKernel(name: CandidateKernel, block = 512): AttentionKernel {
  switch (name) {
    case 'gqa-naive':
      return gqaNaive
    case 'onnx-attention':
      return onnxAttention
    case 'query-blocked':
      return queryBlocked(block)
    case 'tiled-online':
      return tiledOnline(block)
  }
}
