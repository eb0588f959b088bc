/** Parameter counts (read off the built graph, so they can never drift from the model) and KV-cache size. */
import { Graph } from '@moas/tensor-core'
import { ConfigError, type GptConfig } from './config'
import { buildGpt } from './model'
import { kvHeadsPerLayer, queryHeadsPerToken } from './variants'

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

/**
 * An upper bound of the parameter count from the config alone, without building the graph (which for a
 * config of 10⁸ layers would itself never finish): per layer ≤ 24·C² + 20·C (the largest attention, MoAS's
 * three branches and router, plus the MLP and norms), plus the embeddings (vocab + block) · C.
 */
export function estimatedParams(cfg: Pick<GptConfig, 'n_layer' | 'n_embd' | 'vocab_size' | 'block_size'>): number {
  const C = cfg.n_embd
  return cfg.n_layer * (24 * C * C + 20 * C) + (cfg.vocab_size + cfg.block_size) * C
}

/**
 * Refuse, before anything is allocated, a model whose float32 weights alone exceed `bytesAvailable` (the
 * machine's memory) or that no typed array could hold; the message gives the estimate and the limit.
 */
export function checkModelFits(cfg: GptConfig, bytesAvailable: number): void {
  const params = estimatedParams(cfg)
  const bytes = params * 4
  const largest = Math.max(cfg.vocab_size, cfg.block_size, 4 * cfg.n_embd) * cfg.n_embd
  const gib = (b: number) => `${(b / 2 ** 30).toPrecision(3)} GiB`
  if (bytes > bytesAvailable || largest > 2 ** 31 - 1)
    throw new ConfigError(
      `the model is far too large for this machine: up to ${params.toExponential(2)} parameters (${gib(bytes)} of float32 weights, ` +
        `before gradients and optimizer state) against ${gib(bytesAvailable)} of memory; reduce n_layer (${cfg.n_layer}), n_embd (${cfg.n_embd}) or block_size (${cfg.block_size})`,
    )
}

/**
 * A lower bound of the bytes one training step holds: the weights with their gradients and AdamW's two
 * moments (4 copies), and per token the activations the backward pass keeps, counted at their fewest: two
 * T-long rows of attention scores per query head the variant computes, 16 vectors of n_embd per layer,
 * and two of the vocabulary (logits and their gradient). Measured peaks are about twice this.
 */
export function trainingStepBytes(cfg: GptConfig, batchSize: number): { total: number; perSequence: number; fixed: number } {
  const T = cfg.block_size
  const perToken = cfg.n_layer * (2 * queryHeadsPerToken(cfg) * T + 16 * cfg.n_embd) + 2 * cfg.vocab_size
  const perSequence = 4 * T * perToken
  const fixed = 4 * 4 * estimatedParams(cfg)
  return { total: fixed + batchSize * perSequence, perSequence, fixed }
}

/**
 * Refuse, before anything is allocated, a training batch whose step cannot fit in `bytesAvailable` even by
 * the lower bound of trainingStepBytes (the kernel would otherwise kill the process without a word); the
 * message gives the estimate and the largest batch size that could fit.
 */
export function checkTrainingFits(cfg: GptConfig, batchSize: number, bytesAvailable: number): void {
  const { total, perSequence, fixed } = trainingStepBytes(cfg, batchSize)
  if (total <= bytesAvailable) return
  const gib = (b: number) => `${(b / 2 ** 30).toPrecision(3)} GiB`
  // the bound is about half the measured peak: suggest what fits at the measured size
  const fits = Math.floor((bytesAvailable - 2 * fixed) / (2 * perSequence))
  throw new ConfigError(
    `batch size ${batchSize} needs at least ${gib(total)} for one training step (${(perSequence / 2 ** 20).toPrecision(3)} MiB of activations per sequence of ${cfg.block_size} tokens, ` +
      `measured peaks are about twice that) against ${gib(bytesAvailable)} of memory; ${fits >= 1 ? `use a batch size of at most about ${fits} (--accum keeps the effective batch)` : 'reduce block_size or the model'}`,
  )
}
