/**
 * The attention core: the one place that turns grouped queries, keys and values into attention outputs.
 * Everything above it (schemes, MoAS, GQE) calls causalAttention, so an inference path that never
 * materializes the whole T×T score matrix can replace it in one spot.
 */
import { type Dim, type Graph, GraphError, type Tensor, mulDims, ops } from '@moas/tensor-core'

export interface AttentionCoreOptions {
  /** Attention dropout probability, applied to the softmax probabilities. */
  dropout: number
  training: boolean
}

/**
 * Causal scaled dot-product attention over grouped heads.
 * q: [B, G, R, T, d]; k, v: [B, G, 1, T, d]: the R query heads of group g all read KV head g (broadcast,
 * never copied). Key j is visible to query i iff j <= i; scores are scaled by 1/sqrt(d), softmaxed over
 * keys, then dropped out. Returns [B, G, R, T, d]. T may be symbolic (the mask is built at run time from
 * Range/Less) or static (the mask is a constant).
 */
/** One causalAttention call in a graph: how much attention it computes, for tests and cost accounting. */
export interface AttentionCall {
  q: Tensor
  k: Tensor
  v: Tensor
  output: Tensor
  /** G·R: query heads that attend in this call. */
  queryHeads: number
  kvHeads: number
  headDim: number
  seq: Dim
}

const calls = new WeakMap<Graph, AttentionCall[]>()

/** Every causalAttention call made on `graph`, in build order (the graph's structure inside the core may change). */
export function attentionCalls(graph: Graph): readonly AttentionCall[] {
  return calls.get(graph) ?? []
}

export function causalAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionCoreOptions): Tensor {
  checkGrouped(q, k, v)
  const y = foldedAttention(q, k, v, opts)
  const [, G, R, T, d] = q.shape as [Dim, number, number, Dim, number]
  const list = calls.get(q.graph) ?? []
  list.push({ q, k, v, output: y, queryHeads: G * R, kvHeads: G, headDim: d, seq: T })
  calls.set(q.graph, list)
  return y
}

function foldedAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionCoreOptions): Tensor {
  const [B, G, R, T, d] = q.shape as [Dim, number, number, Dim, number]
  // Fold the R query heads of a group into the query axis: one [R·T, d]·[d, T] GEMM per group, and K, V
  // enter the matmuls unbroadcast, so dK and dV come out as single GEMMs with no reduction over R.
  // Scale q (T·d values) rather than the scores (T·T values).
  const qf = ops.reshape(ops.mul(q, 1 / Math.sqrt(d)), [B, G, mulDims(R, T), d])
  const kf = ops.reshape(k, [B, G, T, d])
  const vf = ops.reshape(v, [B, G, T, d])
  // kᵀ on the last two axes: ONNX Runtime fuses this Transpose into the MatMul (FusedMatMul transB).
  const scores = ops.reshape(ops.matmul(qf, ops.transpose(kf, [0, 1, 3, 2])), [B, G, R, T, T])
  const probs = ops.dropout(ops.softmax(ops.add(scores, causalMaskFor(q, T)), -1), opts.dropout, opts.training)
  return ops.reshape(ops.matmul(ops.reshape(probs, [B, G, mulDims(R, T), T]), vf), [B, G, R, T, d])
}

/** Additive causal mask [T, T] in q's dtype: 0 where key <= query, -inf above the diagonal. */
export function causalMaskFor(q: Tensor, T: number | string): Tensor {
  if (typeof T === 'number') return ops.causalMask(q, T)
  // Symbolic T: compare key and query positions at run time.
  const g = q.graph
  const pos = ops.range(ops.dimOf(q, q.rank - 2), T)
  const future = ops.less(ops.unsqueeze(pos, [1]), ops.unsqueeze(pos, [0])) // [T, T]: query i < key j
  return ops.where(future, g.scalar(-Infinity, q.dtype), g.scalar(0, q.dtype))
}

function checkGrouped(q: Tensor, k: Tensor, v: Tensor): void {
  const where = `causalAttention(q ${q.describe()}, k ${k.describe()}, v ${v.describe()})`
  if (q.rank !== 5 || k.rank !== 5 || v.rank !== 5)
    throw new GraphError(`${where}: expects rank-5 tensors, q [B, G, R, T, d] and k, v [B, G, 1, T, d]; use splitHeads and reshape to group heads`)
  if (k.shape[2] !== 1 || v.shape[2] !== 1)
    throw new GraphError(`${where}: k and v must have size 1 on axis 2 (one KV head per group, broadcast over the group's R query heads)`)
  for (const axis of [0, 1, 3, 4]) {
    if (k.shape[axis] !== q.shape[axis] || v.shape[axis] !== q.shape[axis])
      throw new GraphError(`${where}: axis ${axis} (${['B', 'G', 'R', 'T', 'd'][axis]}) differs between q, k and v`)
  }
  if (typeof q.shape[4] !== 'number') throw new GraphError(`${where}: the head dim d must be static`)
}

/** [B, T, n*d] -> [B, n, T, d]. */
export function splitHeads(x: Tensor, n: number, d: number): Tensor {
  if (x.rank !== 3 || x.shape[2] !== n * d) throw new GraphError(`splitHeads: expects [B, T, ${n * d}] for ${n} heads of ${d}, got ${x.describe()}`)
  return ops.transpose(ops.reshape(x, [x.shape[0], x.shape[1], n, d]), [0, 2, 1, 3])
}

/** [B, n, T, d] -> [B, T, n*d]. */
export function mergeHeads(x: Tensor): Tensor {
  if (x.rank !== 4 || typeof x.shape[1] !== 'number' || typeof x.shape[3] !== 'number')
    throw new GraphError(`mergeHeads: expects [B, n, T, d] with static n and d, got ${x.describe()}`)
  const t = ops.transpose(x, [0, 2, 1, 3])
  return ops.reshape(t, [t.shape[0], t.shape[1], (x.shape[1] as number) * (x.shape[3] as number)])
}
