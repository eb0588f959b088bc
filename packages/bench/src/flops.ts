/**
 * Exact MatMul FLOPs of a graph: walk graph.nodes and count 2·m·n·k for every MatMul (times its
 * broadcast batch size) and Gemm. Everything else (elementwise, reductions, softmax) is not counted: the
 * figure is the GEMM work (of nodes that reach an output), the part a fast step spends its time on, so GFLOP/s reads as "how close to
 * the MatMul roofline". Symbolic dims ('batch', 'seq', 'batch*seq') are bound through `dims`.
 */
import { type Dim, Graph, liveNodes, type Node, ops, type Tensor } from '@moas/tensor-core'

export function matmulFlops(graph: Graph, dims: Record<string, number> = {}): number {
  let total = 0
  for (const node of liveNodes(graph)) total += nodeFlops(node, dims)
  return total
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
    if (v === undefined)
      throw new Error(`matmulFlops: symbolic dim '${t}' (of '${d}'${where ? ` in node '${where}'` : ''}) has no size; pass it in dims, e.g. { ${t}: 12 }`)
    return p * v
  }, 1)
}

/**
 * The GEMMs of `graph` alone: for every live MatMul one MatMul with operands of the same shapes (so the
 * same broadcasting and the same exact FLOPs) and nothing else: no layout transposes, masks, softmax,
 * elementwise backward or optimizer. The roofline a training step is measured against.
 *
 * Each GEMM reads its own graph inputs (`a<i>`, `b<i>`): distinct inputs keep ONNX Runtime from merging
 * equal GEMMs. Feeding one buffer per shape under all its names costs no copies (onnxruntime-node wraps
 * an input buffer in place). Each product is reduced to a scalar and the scalars summed into the one
 * output `sum`: nothing can be pruned and no GEMM result is copied out; the reduction reads each product
 * once, which the real step also does at least once.
 */
export function matmulOnlyGraph(graph: Graph, dims: Record<string, number> = {}): { graph: Graph; inputs: { name: string; shape: number[] }[] } {
  const g = new Graph(`${graph.name}_matmul_only`)
  const inputs: { name: string; shape: number[] }[] = []
  const sums: Tensor[] = []
  liveNodes(graph).forEach((node, i) => {
    if (node.op === 'Gemm') throw new Error(`matmulOnlyGraph: Gemm node '${node.name}' is not supported (tensor-core emits MatMul)`)
    if (node.op !== 'MatMul') return
    const operand = (t: Tensor, name: string) => {
      const shape = t.shape.map((d) => resolveDim(d, dims, node.name))
      inputs.push({ name, shape })
      return g.input(name, 'float32', shape)
    }
    const y = ops.matmul(operand(node.inputs[0]!, `a${i}`), operand(node.inputs[1]!, `b${i}`))
    sums.push(
      ops.reduceSum(
        y,
        y.shape.map((_, d) => d),
      ),
    )
  })
  if (!sums.length) throw new Error(`matmulOnlyGraph: graph '${graph.name}' has no live MatMul`)
  g.output('sum', ops.sum(sums))
  return { graph: g, inputs }
}
