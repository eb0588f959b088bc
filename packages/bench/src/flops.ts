/**
 * Exact MatMul FLOPs of a graph: walk graph.nodes and count 2·m·n·k for every MatMul (times its
 * broadcast batch size) and Gemm. Everything else (elementwise, reductions, softmax) is not counted: the
 * figure is the GEMM work (of nodes that reach an output), the part a fast step spends its time on, so GFLOP/s reads as "how close to
 * the MatMul roofline". Symbolic dims ('batch', 'seq', 'batch*seq') are bound through `dims`.
 */
import type { Dim, Graph, Node } from '@moas/tensor-core'

export function matmulFlops(graph: Graph, dims: Record<string, number> = {}): number {
  let total = 0
  for (const node of liveNodes(graph)) total += nodeFlops(node, dims)
  return total
}

/**
 * Nodes that contribute to some graph output. Only their FLOPs count as useful work; a GEMM whose result
 * nothing reads still costs time if the runtime executes it, which shows as lower throughput.
 */
export function liveNodes(graph: Graph): Node[] {
  const live = new Set<Node>()
  const stack = graph.outputs.map((t) => t.producer).filter((n): n is Node => n !== null)
  while (stack.length) {
    const n = stack.pop()!
    if (live.has(n)) continue
    live.add(n)
    for (const t of n.inputs) if (t?.producer) stack.push(t.producer)
  }
  return graph.nodes.filter((n) => live.has(n))
}

/**
 * 2·m·n·k (times the broadcast batch) for a MatMul or Gemm node; for a com.microsoft GroupQueryAttention
 * node, the q·kᵀ and p·v products over the (query, key) pairs causality keeps (a tiled kernel skips the
 * rest): 2·2·d per pair and head; 0 for any other op.
 */
export function nodeFlops(node: Node, dims: Record<string, number>): number {
  if (node.op === 'GroupQueryAttention') return groupQueryAttentionFlops(node, dims)
  if (node.op !== 'MatMul' && node.op !== 'Gemm') return 0
  const a = node.inputs[0]
  const y = node.outputs[0]
  const size = (d: Dim) => resolveDim(d, dims, node.name)
  // k is the contracted dim of A: last for MatMul and Gemm(transA=0), first for Gemm(transA=1).
  const transA = node.op === 'Gemm' && node.attrs.transA?.value === 1
  const k = size(transA ? a!.shape[0] : a!.shape[a!.rank - 1])
  const outElems = y.shape.map(size).reduce((p, q) => p * q, 1)
  return 2 * outElems * k
}

function groupQueryAttentionFlops(node: Node, dims: Record<string, number>): number {
  const size = (d: Dim) => resolveDim(d, dims, node.name)
  const [query, , , pastKey] = node.inputs
  const B = size(query!.shape[0])
  const S = size(query!.shape[1])
  const heads = node.attrs.num_heads.value as number
  const d = size(query!.shape[2]) / heads
  const P = pastKey ? size(pastKey.shape[2]) : 0
  // Query t (0-based among the S new ones) sees the P past keys and new keys 0..t.
  const pairs = S * P + (S * (S + 1)) / 2
  return 2 * 2 * d * pairs * heads * B
}

/** A static dim, a named symbolic dim, or a product of such ('12*batch*seq'). */
export function resolveDim(d: Dim, dims: Record<string, number>, where = ''): number {
  if (typeof d === 'number') return d
  return d.split('*').reduce((p, f) => {
    const t = f.trim()
    const v = /^\d+$/.test(t) ? Number(t) : dims[t]
    if (v === undefined) throw new Error(`matmulFlops: symbolic dim '${t}' (of '${d}'${where ? ` in node '${where}'` : ''}) has no size; pass it in dims, e.g. { ${t}: 12 }`)
    return p * v
  }, 1)
}
