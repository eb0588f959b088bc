/**
 * The attention core: the one place that turns grouped queries, keys and values into attention outputs.
 * Everything above it (schemes, MoAS, GQE) calls causalAttention, so an inference path that never
 * materializes the whole T×T score matrix can replace it in one spot.
 */
import { addDims, attr, type Dim, type Graph, GraphError, mulDims, ops, type Tensor } from '@moas/tensor-core'

export interface AttentionCoreOptions {
  /** Attention dropout probability, applied to the softmax probabilities. */
  dropout: number
  training: boolean
  /**
   * Additive mask [B or 1, 1, 1, Tq, Tk] in q's dtype (0 where the key is visible, -inf where not), from
   * visibilityMask: for queries that are not the plain causal square over the same T positions as the
   * keys — a decode step or a prefill against P cached positions, left padding, or routed queries at
   * chosen positions. Absent: Tq = Tk and key j is visible to query i iff j <= i.
   */
  mask?: Tensor
  /**
   * The mask says no more than causality over a cache: the Tq queries are the last Tq of the Tk key
   * positions and every key is valid (no padding). A kernel may then ignore the mask and attend causally
   * from slot Tk - Tq (memoryEfficientAttention does). Decoder graphs built without padding set it.
   */
  causalSuffix?: boolean
  /**
   * A KV cache's past [B or 1, G, 1, P, d]: keys and values that come before k and v, so the keys are
   * past ++ k and the mask covers P + Tk of them (with past, a mask is required). Kept apart from the new
   * positions: a kernel that takes the past as its own input (GroupQueryAttention) copies nothing; one
   * that reads the keys whole joins them with joinPast, through `join` when the cache offers one.
   */
  past?: CachePast
}

/** A call's share of a KV cache's past, and (from LayerKvCache) the one join of it with the new positions. */
export interface CachePast {
  key: Tensor
  value: Tensor
  join?: (k: Tensor, v: Tensor) => { k: Tensor; v: Tensor }
}

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
  /** Query positions per head (Tq). */
  seq: Dim
  /** Key positions (Tk: the cached past plus the new positions when a KV cache is used). */
  keys: Dim
}

const calls = new WeakMap<Graph, AttentionCall[]>()

/** Every causalAttention call made on `graph`, in build order (the graph's structure inside the core may change). */
export function attentionCalls(graph: Graph): readonly AttentionCall[] {
  return calls.get(graph) ?? []
}

/**
 * Causal scaled dot-product attention over grouped heads.
 * q: [B, G, R, Tq, d]; k, v: [B, G, 1, Tk, d]: the R query heads of group g all read KV head g (broadcast,
 * never copied). Without `opts.mask`, Tq = Tk and key j is visible to query i iff j <= i; with it, the
 * mask says what each query sees. Scores are scaled by 1/sqrt(d), softmaxed over keys, then dropped out.
 * Returns [B, G, R, Tq, d]. T may be symbolic (the mask is built at run time) or static (a constant).
 */
export function causalAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionCoreOptions): Tensor {
  checkGrouped(q, k, v, opts.mask, opts.past)
  const y = (kernels.get(q.graph) ?? composedAttention)(q, k, v, opts)
  const [, G, R, T, d] = q.shape as [Dim, number, number, Dim, number]
  const list = calls.get(q.graph) ?? []
  list.push({
    q,
    k,
    v,
    output: y,
    queryHeads: G * R,
    kvHeads: G,
    headDim: d,
    seq: T,
    keys: opts.past ? addDims(opts.past.key.shape[3], k.shape[3]) : k.shape[3],
  })
  calls.set(q.graph, list)
  return y
}

/**
 * An implementation of the attention core: q [B, G, R, Tq, d], k, v [B, G, 1, Tk, d] (already checked)
 * and the core options → [B, G, R, Tq, d]. Kernels are swappable per graph (useAttentionKernel): the
 * composed one below is the reference; a memory-efficient one can replace it in inference graphs.
 */
export type AttentionKernel = (q: Tensor, k: Tensor, v: Tensor, opts: AttentionCoreOptions) => Tensor

const kernels = new WeakMap<Graph, AttentionKernel>()

/** Every causalAttention call on `graph` from now on uses `kernel` (the default is composedAttention). */
export function useAttentionKernel(graph: Graph, kernel: AttentionKernel): void {
  kernels.set(graph, kernel)
}

/**
 * The reference kernel, composed from standard ops (MatMul, Softmax): it materializes the [Tq, Tk] scores
 * of every head. Differentiable, so training graphs use it.
 */
export const composedAttention: AttentionKernel = (q, k, v, opts) => foldedAttention(q, k, v, opts)

/**
 * The whole keys and values, past ++ new [B, G, 1, P + Tk, d], for a kernel that reads them as one
 * tensor (a copy of the cache's heads). A past from LayerKvCache joins once per call, and the cache
 * reuses that join as the graph's present.
 */
export function joinPast(k: Tensor, v: Tensor, opts: Pick<AttentionCoreOptions, 'past'>): { k: Tensor; v: Tensor } {
  const past = opts.past
  if (!past) return { k, v }
  return past.join?.(k, v) ?? { k: ops.concat([past.key, k], 3), v: ops.concat([past.value, v], 3) }
}

function foldedAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionCoreOptions): Tensor {
  const [B, G, R, T, d] = q.shape as [Dim, number, number, Dim, number]
  // Fold the R query heads of a group into the query axis: one [R·T, d]·[d, T] GEMM per group, and K, V
  // enter the matmuls unbroadcast, so dK and dV come out as single GEMMs with no reduction over R.
  // Scale q (T·d values) rather than the scores (T·T values).
  // With a mask, Tq may be 0 (no token routed to a branch), where Reshape's inferred sizes are ambiguous:
  // the masked path spells every shape out from run-time shapes (fold/unfold).
  const fold = (t: Tensor) =>
    opts.mask ? ops.reshapeTo(t, foldedShape(t), [B, G, mulDims(R, T), t.shape[4]]) : ops.reshape(t, [B, G, mulDims(R, T), t.shape[4]])
  const qf = fold(ops.mul(q, 1 / Math.sqrt(d)))
  // A cache's past is joined with the new positions here (the call's one copy of its cache heads, which
  // the cache reuses as the graph's present): the composed core reads K, V whole. Joining the scores
  // instead (attending to the past apart) made decode steps at 8k about 0.75× as long but prefills up
  // to 1.45× as long in an A/B on GQE's setting, since a prefill's scores outweigh its keys.
  const joined = joinPast(k, v, opts)
  const Tk = joined.k.shape[3]
  const kf = ops.reshape(joined.k, [joined.k.shape[0], G, Tk, d])
  const vf = ops.reshape(joined.v, [joined.v.shape[0], G, Tk, d])
  // kᵀ on the last two axes: ONNX Runtime fuses this Transpose into the MatMul (FusedMatMul transB).
  const folded = ops.matmul(qf, ops.transpose(kf, [0, 1, 3, 2])) // [B, G, R·T, Tk]
  const scores = opts.mask ? ops.reshapeTo(folded, unfoldedShape(folded, R), [B, G, R, T, Tk]) : ops.reshape(folded, [B, G, R, T, Tk])
  // Dropout's 1 / (1 − p) is applied to the [R·T, d] output, not the [R·T, Tk] probabilities: one
  // full-size multiply fewer (ONNX Runtime even fuses the scale into the MatMul, as a float32 alpha). Not
  // in float64 graphs, where that float32 alpha would cost them their precision (~3e-8 relative).
  const probs = ops.softmax(ops.add(scores, opts.mask ?? causalMaskFor(q, T)), -1)
  // Plain causal square: the probabilities above the diagonal are exactly 0, so the dropout mask's values
  // there never matter and the trainer draws only the lower triangle (half the noise).
  const site = { causal: !opts.mask && typeof T === 'number' && T === Tk }
  const dropped =
    q.dtype === 'float64'
      ? { y: ops.dropout(probs, opts.dropout, opts.training, undefined, site), scale: 1 }
      : ops.dropoutUnscaled(probs, opts.dropout, opts.training, undefined, site)
  const pv = ops.matmul(fold(dropped.y), vf) // [B, G, R·T, d]
  const out = dropped.scale === 1 ? pv : ops.mul(pv, dropped.scale)
  return opts.mask ? ops.reshapeTo(out, unfoldedShape(out, R), q.shape) : ops.reshape(out, [B, G, R, T, d])
}

/**
 * The memory-efficient kernel for inference graphs: ONNX Runtime's com.microsoft GroupQueryAttention,
 * whose CPU fp32 path is tiled ("flash": an online softmax over key blocks, fully masked future blocks
 * skipped) when its present outputs are wired, so no [Tq, Tk] score tensor exists and memory is linear in
 * T. The G·R query heads of a call read their group's KV head (num_heads = G·R, kv_num_heads = G).
 * Measured against the composed kernel and the other candidates in docs/performance.md.
 *
 * It takes the plain causal square (no mask) and, with a KV cache, causal suffixes (`causalSuffix` with
 * `past`: the past goes in as past_key/past_value, the new positions as key/value). Everything else falls back to
 * composedAttention: training (dropout, gradients: the op has no gradient), float64 (the op has no
 * double kernel), head sizes that are not a multiple of 8 (the op refuses them), and masks that say more
 * than causality (left padding; moas-topk's routed queries, which attend from scattered positions).
 * Runs on onnxruntime-node's cpu and onnxruntime-web's wasm providers (tested).
 */
export const memoryEfficientAttention: AttentionKernel = (q, k, v, opts) => {
  const d = q.shape[4] as number
  if (opts.training || q.dtype === 'float64' || d % 8 !== 0 || (opts.mask && !(opts.causalSuffix && opts.past))) return composedAttention(q, k, v, opts)
  const g = q.graph
  const [B, G, R, Tq] = q.shape as [Dim, number, number, Dim, number]
  const heads = (t: Tensor, n: number) => ops.reshape(t, [t.shape[0], n, t.shape[3], d]) // [B, n, T, d]
  const rows = (t: Tensor) => ops.reshape(ops.transpose(t, [0, 2, 1, 3]), [t.shape[0], t.shape[2], (t.shape[1] as number) * d]) // [B, T, n·d]
  const query = rows(heads(q, G * R))
  // The past goes in as past_key/past_value [B, G, P, d] and the op prepends it itself (its present
  // outputs): the one copy of the cache a step makes here.
  const past: (Tensor | null)[] = opts.past ? [heads(opts.past.key, G), heads(opts.past.value, G)] : [null, null]
  const Tk = opts.past ? addDims(opts.past.key.shape[3], k.shape[3]) : k.shape[3]
  const keyLength = opts.past ? ops.add(ops.dimOf(opts.past.key, 3), ops.dimOf(k, 3)) : ops.dimOf(k, 3)
  // seqlens_k = total length − 1 per sequence, total_sequence_length = Tk (int32, as the op requires).
  const total = ops.cast(keyLength, 'int32')
  const batch = ops.slice(ops.shapeOf(q), [0], [1], [0]) // int64 [1]
  const [seqlens] = g.addNode('Expand', [ops.unsqueeze(ops.sub(total, g.scalar(1, 'int32')), [0]), batch], [{ dtype: 'int32', shape: [B] }])
  const [out] = g.addNode(
    'GroupQueryAttention',
    [query, rows(heads(k, G)), rows(heads(v, G)), past[0], past[1], seqlens, total],
    [
      { dtype: q.dtype, shape: [B, Tq, G * R * d] },
      { dtype: q.dtype, shape: [B, G, Tk, d] },
      { dtype: q.dtype, shape: [B, G, Tk, d] },
    ],
    { num_heads: attr.int(G * R), kv_num_heads: attr.int(G) },
    'com.microsoft',
  )
  return ops.reshape(ops.transpose(ops.reshape(out, [B, Tq, G * R, d]), [0, 2, 1, 3]), [B, G, R, Tq, d])
}

/** int64 [4]: the run-time shape [B, G, R·n, last] of a [B, G, R, n, last] tensor. */
function foldedShape(t: Tensor): Tensor {
  const s = ops.shapeOf(t)
  return ops.concat([ops.slice(s, [0], [2], [0]), ops.mul(ops.slice(s, [2], [3], [0]), ops.slice(s, [3], [4], [0])), ops.slice(s, [4], [5], [0])], 0)
}

/** int64 [5]: the run-time shape [B, G, R, n / R, last] of a folded [B, G, n, last] tensor. */
function unfoldedShape(folded: Tensor, R: number): Tensor {
  const s = ops.shapeOf(folded)
  const g = folded.graph
  const rows = ops.div(ops.slice(s, [2], [3], [0]), g.ints([R]))
  return ops.concat([ops.slice(s, [0], [2], [0]), g.ints([R]), rows, ops.slice(s, [3], [4], [0])], 0)
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

/**
 * The additive mask [B, 1, 1, Tq, Tk] for queries at given slots against keys at slots 0..Tk-1 (slot =
 * index in the cache: past positions first, then the new ones). Key j is visible to a query at slot s iff
 * j <= s and keyValid[b, j] (attention_mask: left padding is 0), or j = s (a query always sees itself,
 * so the rows of padding tokens stay finite; they are never read as outputs).
 * querySlots: int64 [B or 1, Tq]; keys: bool keyValid [B, Tk], or just their number (every key valid:
 * an int64 scalar and its Dim). `dtype` is the scores' dtype.
 */
export function visibilityMask(querySlots: Tensor, keys: Tensor | { length: Tensor; dim: Dim }, dtype: 'float32' | 'float64' | 'float16'): Tensor {
  if (querySlots.dtype !== 'int64' || querySlots.rank !== 2)
    throw new GraphError(`visibilityMask: querySlots must be int64 [B, Tq], got ${querySlots.describe()}`)
  const valid = 'length' in keys ? null : keys
  if (valid && (valid.dtype !== 'bool' || valid.rank !== 2)) throw new GraphError(`visibilityMask: keyValid must be bool [B, Tk], got ${valid.describe()}`)
  const g = querySlots.graph
  const keySlots = ops.unsqueeze(
    valid ? ops.range(ops.dimOf(valid, 1), valid.shape[1]) : ops.range((keys as { length: Tensor }).length, (keys as { dim: Dim }).dim),
    [0, 1],
  ) // [1, 1, Tk]
  const slots = ops.unsqueeze(querySlots, [-1]) // [B, Tq, 1]
  const causal = ops.lessOrEqual(keySlots, slots)
  const seen = valid ? ops.or(ops.and(causal, ops.unsqueeze(valid, [1])), ops.equal(keySlots, slots)) : causal // [B, Tq, Tk]
  return ops.unsqueeze(ops.where(seen, g.scalar(0, dtype), g.scalar(-Infinity, dtype)), [1, 2])
}

function checkGrouped(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | undefined, past: AttentionCoreOptions['past']): void {
  const where = `causalAttention(q ${q.describe()}, k ${k.describe()}, v ${v.describe()})`
  if (q.rank !== 5 || k.rank !== 5 || v.rank !== 5)
    throw new GraphError(`${where}: expects rank-5 tensors, q [B, G, R, T, d] and k, v [B, G, 1, T, d]; use splitHeads and reshape to group heads`)
  if (k.shape[2] !== 1 || v.shape[2] !== 1)
    throw new GraphError(`${where}: k and v must have size 1 on axis 2 (one KV head per group, broadcast over the group's R query heads)`)
  // With a mask the queries may be fewer than the keys (a decode step, routed queries) and K/V may have a
  // broadcast batch of 1.
  const axes = mask ? [1, 4] : [0, 1, 3, 4]
  for (const axis of axes) {
    if (k.shape[axis] !== q.shape[axis] || v.shape[axis] !== q.shape[axis])
      throw new GraphError(`${where}: axis ${axis} (${['B', 'G', 'R', 'T', 'd'][axis]}) differs between q, k and v`)
  }
  if (mask && (k.shape[3] !== v.shape[3] || k.shape[0] !== v.shape[0])) throw new GraphError(`${where}: k and v differ in batch or length`)
  if (past) {
    const { key, value } = past
    if (!mask) throw new GraphError(`${where}: a past needs a mask over its P keys and the Tk new ones (build it with visibilityMask)`)
    if (
      key.rank !== 5 ||
      value.rank !== 5 ||
      [1, 2, 4].some((a) => key.shape[a] !== k.shape[a] || value.shape[a] !== k.shape[a]) ||
      key.shape[3] !== value.shape[3] ||
      key.shape[0] !== value.shape[0]
    )
      throw new GraphError(`${where}: past key ${key.describe()} and value ${value.describe()} must be [B, G, 1, P, d] like k and v`)
  }
  const Tk = past ? addDims(past.key.shape[3], k.shape[3]) : k.shape[3]
  if (mask && (mask.rank !== 5 || mask.shape[4] !== Tk))
    throw new GraphError(`${where}: mask ${mask.describe()} must be [B, 1, 1, Tq, Tk] with Tk = ${Tk} (build it with visibilityMask)`)
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
