/** Parameter counts (read off the built graph, so they can never drift from the model) and KV-cache size. */
import { Graph } from '@moas/tensor-core'
import { type GptConfig, kvHeadsPerLayer } from './config'
import { buildGpt } from './model'

/** Every parameter's checkpoint name and shape, in graph order. */
export function paramShapes(cfg: GptConfig): Map<string, number[]> {
  const g = new Graph('param-shapes')
  buildGpt(g, cfg, { batch: 1, seq: cfg.block_size, training: true, withTargets: false })
  return new Map(g.params.map((p) => [p.tensor.name, [...(p.tensor.shape as number[])]]))
}

export interface ParamCounts {
  total: number
  /** total − the position embedding (block_size × n_embd), as the MoAS paper counts. */
  excludingPositionEmbedding: number
  perTensor: Record<string, number>
}

export function paramCounts(cfg: GptConfig): ParamCounts {
  const perTensor: Record<string, number> = {}
  let total = 0
  for (const [name, shape] of paramShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1)
    perTensor[name] = n
    total += n
  }
  return { total, excludingPositionEmbedding: total - perTensor['transformer.wpe.weight'], perTensor }
}

/** Bytes of K and V cached per token for the whole model: 2 · n_layer · kv heads · head dim · bytes. */
export function kvCacheBytesPerToken(cfg: GptConfig, bytesPerElement = 4): number {
  return 2 * cfg.n_layer * kvHeadsPerLayer(cfg) * (cfg.n_embd / cfg.n_head) * bytesPerElement
}
