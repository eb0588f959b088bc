/**
 * The deterministic full evaluation of a token sequence (evaluateText, which reads a checkpoint
 * directory, is in `@moas/trainer/node`).
 */
import { buildLogitsGraph, type LoadedModel, type OnUnknown, paramFeeds } from '@moas/gpt'
import { type Provider, Session } from '@moas/tensor-core'
import { evalWindows } from './data/batches'
import { DataError } from './data/errors'
import { type DeterminedChar, SYNTHETIC_TASKS, type SyntheticTask, syntheticDetermined } from './data/synthetic'
import { TrainError } from './errors'
import { EvalSession } from './eval-session'

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
  /** A moas-kv control (kv_route random): the seed of its eval level draws (default 0). */
  seed?: number
}

/**
 * The deterministic full evaluation (evalWindows): windows at 0, T, 2T, … while start + T + 1 ≤ length,
 * inputs [s, s+T), targets [s+1, s+T+1); the mean cross entropy over all targets, in nats.
 */
export async function evaluateTokens(model: LoadedModel, tokens: Int32Array, opts: EvaluateOptions = {}): Promise<EvalResult> {
  const T = model.config.block_size
  const windows = evalWindows(tokens, T)
  if (windows.starts.length === 0)
    throw new DataError(
      `the text has ${tokens.length} tokens; the full evaluation needs at least block_size + 1 = ${T + 1} (one window of ${T} inputs and its shifted targets)`,
    )
  const kvRoute = { vocab: model.tokenizer.vocab, seed: opts.seed ?? 0 }
  const session = await EvalSession.create(model.config, { threads: opts.threads, provider: opts.provider, kvRoute })
  try {
    const { loss, tokens: n } = await session.meanLoss(model.params, windows.batches(opts.batchSize ?? 8))
    if (!Number.isFinite(loss))
      throw new TrainError(
        `the evaluation gave a non-finite loss (${loss}): the model overflows on this text; its weights are finite (checked on load) but too large, e.g. a diverged run`,
      )
    return { loss, bpc: loss / Math.LN2, tokens: n }
  } finally {
    await session.release()
  }
}

/**
 * Accuracy on the determined characters of a synthetic text (syntheticDetermined), per task: the share of
 * them the model predicts exactly with its most likely character (for brackets, the most likely of the
 * four closers: when to close is random, which closer is not). Windows of block_size at 0, T, 2T, …; a
 * character counts only if its whole line up to it lies in its window (the context that determines it).
 */
export async function syntheticTaskAccuracy(
  model: Pick<LoadedModel, 'config' | 'params' | 'tokenizer'>,
  text: string,
  opts: { threads?: number; provider?: Provider; batchSize?: number } = {},
): Promise<Record<SyntheticTask, { correct: number; total: number; accuracy: number | null }>> {
  const T = model.config.block_size
  const V = model.config.vocab_size
  const ids = model.tokenizer.encode(text)
  const closers = [...')]}>'].map((c) => model.tokenizer.encode(c)[0])
  const byWindow = new Map<number, DeterminedChar[]>()
  for (const d of syntheticDetermined(text)) {
    const w = Math.floor(d.index / T)
    if (d.lineStart < w * T || d.index === w * T) continue // its context starts before the window
    byWindow.set(w, [...(byWindow.get(w) ?? []), d])
  }
  const result = Object.fromEntries(SYNTHETIC_TASKS.map((t) => [t, { correct: 0, total: 0, accuracy: null as number | null }])) as Record<
    SyntheticTask,
    { correct: number; total: number; accuracy: number | null }
  >
  const graph = buildLogitsGraph(model.config, { batch: 'batch' })
  const session = await Session.create(graph, { threads: opts.threads, provider: opts.provider })
  try {
    const feeds = paramFeeds(model.params, graph.params)
    const windows = [...byWindow.keys()].filter((w) => (w + 1) * T <= ids.length)
    const B = opts.batchSize ?? 8
    for (let i = 0; i < windows.length; i += B) {
      const batch = windows.slice(i, i + B)
      const x = new BigInt64Array(batch.length * T)
      batch.forEach((w, r) => {
        for (let t = 0; t < T; t++) x[r * T + t] = BigInt(ids[w * T + t])
      })
      feeds[graph.inputs[0].name] = { dtype: 'int64', shape: [batch.length, T], data: x }
      const logits = (await session.run(feeds)).logits.data as Float32Array
      batch.forEach((w, r) => {
        for (const d of byWindow.get(w)!) {
          const row = logits.subarray((r * T + d.index - w * T - 1) * V, (r * T + d.index - w * T) * V) // predicts position d.index
          const candidates = d.task === 'brackets' ? closers : null
          let best = candidates ? candidates[0] : 0
          for (const c of candidates ?? row.keys()) if (row[c] > row[best]) best = c
          result[d.task].total++
          if (best === ids[d.index]) result[d.task].correct++
        }
      })
    }
  } finally {
    await session.release()
  }
  for (const t of SYNTHETIC_TASKS) result[t].accuracy = result[t].total ? result[t].correct / result[t].total : null
  return result
}
