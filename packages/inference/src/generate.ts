/**
 * Streaming generation over a DecoderSession: prefill the prompts, then one token per row per step,
 * sampled with the one sampler. When the context reaches block_size the window slides: the cache is
 * rebuilt from the last ⌊block_size / 2⌋ tokens of each row (one prefill) and decoding goes on, so a
 * model can write past its context length; logits after a slide are those of the cropped context.
 */

import type { CharTokenizer, OnUnknown } from '@moas/gpt'
import type { DecoderSession, DecoderStep } from './decoder'
import { InferenceError } from './errors'
import { checkSampling, type SamplingOptions, sampleToken, seededRandom } from './sampling'

export interface GenerateOptions extends SamplingOptions {
  /** New tokens per prompt (default 200). */
  maxNewTokens?: number
  /** Seed of the sampler's random source (default 0); greedy decoding ignores it. */
  seed?: number
  /** Called with each new token of each row as soon as it is sampled. */
  onToken?: (token: GeneratedToken) => void
  /** Stop early (the result holds what was generated). */
  signal?: AbortSignal
  /** Prompt characters outside the vocabulary: refuse (default) or drop. */
  onUnknown?: OnUnknown
  /**
   * Called after every decoder run with its raw result (logits and, for routing sessions, the gates and
   * chosen experts of the positions it ran): the prefill first (all prompt positions, left-padded), then one
   * position per row per step (the token just fed). `slid` is true for a prefill that rebuilt the window.
   */
  onRun?: (run: DecoderStep, info: { prefill: boolean; slid: boolean }) => void
}

export interface GeneratedToken {
  row: number
  id: number
  text: string
  /** 0-based index among this row's new tokens. */
  index: number
}

export interface GenerateResult {
  /** Each prompt's continuation. */
  completions: string[]
  ids: number[][]
  /** Prompt tokens run through the prefill (all rows, padding excluded) and its wall time. */
  prefill: { tokens: number; ms: number }
  /** Tokens produced by decode steps (all rows) and their wall time; the first token comes from the prefill. */
  decode: { tokens: number; ms: number }
  /** Times the window slid (context reached block_size). */
  slides: number
  /** Bytes the KV cache held at the end. */
  cacheBytes: number
}

/** Generate a continuation of every prompt (one batch, left-padded). */
export async function generate(
  session: DecoderSession,
  tokenizer: CharTokenizer,
  prompts: readonly string[],
  opts: GenerateOptions = {},
): Promise<GenerateResult> {
  const sampling = checkSampling(opts)
  const n = opts.maxNewTokens ?? 200
  if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`the number of new tokens must be a non-negative integer, got ${n}`)
  if (prompts.length === 0) throw new InferenceError('give at least one prompt')
  const rows = prompts.map((p, b) => {
    const ids = [...tokenizer.encode(p, { onUnknown: opts.onUnknown })]
    if (ids.length === 0) throw new InferenceError(`prompt ${b} has no characters the model knows; give at least one character of its vocabulary`)
    return ids
  })
  const V = session.config.vocab_size
  const window = Math.max(1, Math.floor(session.config.block_size / 2))
  const random = seededRandom(opts.seed ?? 0)
  const out: number[][] = prompts.map(() => [])
  const result: GenerateResult = {
    completions: prompts.map(() => ''),
    ids: out,
    prefill: { tokens: 0, ms: 0 },
    decode: { tokens: 0, ms: 0 },
    slides: 0,
    cacheBytes: 0,
  }
  if (n === 0) return result

  const context = rows.map((r) => r.slice(-session.config.block_size))
  let t0 = performance.now()
  let step = await session.prefill(context)
  result.prefill = { tokens: context.reduce((s, r) => s + r.length, 0), ms: performance.now() - t0 }
  opts.onRun?.(step, { prefill: true, slid: false })
  let last = lastLogits(step.logits, context.length, step.length, V)
  for (let i = 0; i < n; i++) {
    const next = last.map((logits) => sampleToken(logits, sampling, random))
    next.forEach((id, row) => {
      out[row].push(id)
      context[row].push(id)
      const text = tokenizer.decode([id])
      result.completions[row] += text
      opts.onToken?.({ row, id, text, index: i })
    })
    if (i === n - 1 || opts.signal?.aborted) break
    t0 = performance.now()
    if (session.pastLength + 1 > session.config.block_size) {
      result.slides++
      for (const row of context) row.splice(0, row.length - window)
      step = await session.prefill(context)
      opts.onRun?.(step, { prefill: true, slid: true })
    } else {
      step = await session.step(next)
      opts.onRun?.(step, { prefill: false, slid: false })
    }
    result.decode.ms += performance.now() - t0
    result.decode.tokens += next.length
    last = lastLogits(step.logits, context.length, step.length, V)
  }
  result.cacheBytes = session.cacheBytes
  return result
}

/** The logits of each row's last position from [B, T, V]. */
function lastLogits(logits: Float32Array, B: number, T: number, V: number): Float32Array[] {
  return Array.from({ length: B }, (_, b) => logits.subarray((b * T + T - 1) * V, (b * T + T) * V))
}
