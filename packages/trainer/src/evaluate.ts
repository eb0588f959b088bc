/**
 * The deterministic full evaluation of a token sequence (evaluateText, which reads a checkpoint
 * directory, is in `@moas/trainer/node`).
 */
import type { LoadedModel, OnUnknown } from '@moas/inference'
import type { Provider } from '@moas/tensor-core'
import { evalWindows } from './data/batches'
import { DataError } from './data/errors'
import { EvalSession } from './engine'
import { TrainError } from './errors'

export interface EvalResult {
  /** Mean cross entropy over every predicted target, nats. */
  loss: number
  /** Bits per character: loss / ln 2. */
  bpc: number
  /** Number of predicted targets. */
  tokens: number
}

export interface EvaluateOptions {
  /** Characters outside the vocabulary: 'error' (default) or 'skip'. */
  onUnknown?: OnUnknown
  /** Windows per session run (default 8). */
  batchSize?: number
  threads?: number
  provider?: Provider
}

/**
 * The deterministic full evaluation (evalWindows): windows at 0, T, 2T, … while start + T + 1 ≤ length,
 * inputs [s, s+T), targets [s+1, s+T+1); the mean cross entropy over all targets, in nats.
 */
export async function evaluateTokens(model: LoadedModel, tokens: Int32Array, opts: EvaluateOptions = {}): Promise<EvalResult> {
  const T = model.config.block_size
  const windows = evalWindows(tokens, T)
  if (windows.starts.length === 0)
    throw new DataError(`the text has ${tokens.length} tokens; the full evaluation needs at least block_size + 1 = ${T + 1} (one window of ${T} inputs and its shifted targets)`)
  const session = await EvalSession.create(model.config, { threads: opts.threads, provider: opts.provider })
  try {
    const { loss, tokens: n } = await session.meanLoss(model.params, windows.batches(opts.batchSize ?? 8))
    if (!Number.isFinite(loss)) throw new TrainError(`the evaluation gave a non-finite loss (${loss}): the model overflows on this text; its weights are finite (checked on load) but too large, e.g. a diverged run`)
    return { loss, bpc: loss / Math.LN2, tokens: n }
  } finally {
    await session.release()
  }
}


