/**
 * What ONNX Runtime fused: the nodes of an ONNX model (e.g. the optimized graph it writes to
 * `optimizedModelPath`), read with tensor-core's readOnnxModel, and their op counts.
 */
import { type OnnxNode, readOnnxModel } from '@moas/tensor-core'

export type { OnnxNode }

export interface OnnxGraphSummary {
  nodes: OnnxNode[]
  /** Initializer name → dims (constant-folded tensors show up here). */
  initializers: Map<string, number[]>
}

export function readOnnxGraph(model: Uint8Array): OnnxGraphSummary {
  const { nodes, initializers } = readOnnxModel(model)
  return { nodes, initializers: new Map([...initializers].map(([name, t]) => [name, t.dims])) }
}

/** `FusedMatMul×24 Mul×40 ...`, most frequent first. */
export function opCounts(nodes: readonly OnnxNode[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const n of nodes) {
    const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.op}` : n.op
    counts[key] = (counts[key] ?? 0) + 1
  }
  return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1]))
}
