/**
 * Using a checkpoint: the deterministic full evaluation of a text, and sampling.
 */
import { type GptConfig, CheckpointError, loadCheckpoint } from '@moas/gpt'
import { Session } from '@moas/tensor-core'
import { evalWindows } from './data/batches'
import { CharTokenizer, type OnUnknown } from './data/charTokenizer'
import { DataError } from './data/errors'
import { Mulberry32 } from './data/prng'
import { EvalSession, buildLogitsGraph, paramFeeds, paramInfos } from './engine'

export interface LoadedModel {
  dir: string
  config: GptConfig
  params: Map<string, Float32Array>
  tokenizer: CharTokenizer
}

/** A checkpoint's model and tokenizer (any checkpoint: a run directory or a bare model). */
export async function loadModel(dir: string): Promise<LoadedModel> {
  const ck = await loadCheckpoint(dir)
  let tokenizer: CharTokenizer
  try {
    tokenizer = CharTokenizer.fromJSON(ck.tokenizer)
  } catch (e) {
    throw new CheckpointError(`${ck.dir}/tokenizer.json: ${(e as Error).message}`)
  }
  if (tokenizer.vocabSize !== ck.config.vocab_size)
    throw new CheckpointError(`${ck.dir}: tokenizer.json has ${tokenizer.vocabSize} symbols but the model's vocab_size is ${ck.config.vocab_size}`)
  return { dir: ck.dir, config: ck.config, params: ck.params, tokenizer }
}

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
  const session = await EvalSession.create(model.config, { threads: opts.threads })
  try {
    const { loss, tokens: n } = await session.meanLoss(model.params, windows.batches(opts.batchSize ?? 8))
    return { loss, bpc: loss / Math.LN2, tokens: n }
  } finally {
    await session.release()
  }
}

/** evaluateTokens of a text, with the checkpoint's tokenizer. */
export async function evaluateText(checkpointDir: string, text: string, opts: EvaluateOptions = {}): Promise<EvalResult> {
  const model = await loadModel(checkpointDir)
  return evaluateTokens(model, model.tokenizer.encode(text, { onUnknown: opts.onUnknown }), opts)
}

export interface GenerateOptions {
  prompt: string
  /** New tokens to sample (default 200). */
  tokens?: number
  /** Softmax temperature (default 1); 0 picks the most likely token. */
  temperature?: number
  /** Sample among the k most likely tokens only (default: all). */
  topK?: number
  seed?: number
  onUnknown?: OnUnknown
  /** Called with each new piece of text as it is sampled. */
  onText?: (piece: string) => void
  threads?: number
}

/** Next-token logits of a context (any length up to block_size): one session, batch 1, symbolic length. */
export class LogitsSession {
  private constructor(
    private readonly session: Session,
    private readonly feeds: Record<string, import('@moas/tensor-core').HostTensor>,
    readonly vocabSize: number,
  ) {}

  static async create(model: LoadedModel, opts: { threads?: number } = {}): Promise<LogitsSession> {
    const session = await Session.create(buildLogitsGraph(model.config), { threads: opts.threads })
    return new LogitsSession(session, paramFeeds(model.params, paramInfos(model.config)), model.config.vocab_size)
  }

  /** Logits of the token after `context` (a Float32Array of vocab_size). */
  async next(context: readonly number[]): Promise<Float32Array> {
    const idx = BigInt64Array.from(context, (v) => BigInt(v))
    this.feeds.idx = { dtype: 'int64', shape: [1, idx.length], data: idx }
    const out = await this.session.run(this.feeds)
    const logits = out.logits.data as Float32Array
    return logits.subarray((idx.length - 1) * this.vocabSize, idx.length * this.vocabSize)
  }

  async release(): Promise<void> {
    await this.session.release()
  }
}

/** Draw a token id from logits with temperature and top-k (float64 softmax). */
export function sampleToken(logits: ArrayLike<number>, temperature: number, topK: number | undefined, rng: Mulberry32): number {
  const V = logits.length
  let best = 0
  for (let i = 1; i < V; i++) if (logits[i] > logits[best]) best = i
  if (temperature === 0) return best
  let cutoff = -Infinity
  if (topK !== undefined && topK < V) cutoff = Array.from(logits).sort((a, b) => b - a)[topK - 1]
  const p = new Float64Array(V)
  let sum = 0
  for (let i = 0; i < V; i++) {
    p[i] = logits[i] >= cutoff ? Math.exp((logits[i] - logits[best]) / temperature) : 0
    sum += p[i]
  }
  let u = rng.next() * sum
  for (let i = 0; i < V; i++) {
    u -= p[i]
    if (u < 0 && p[i] > 0) return i
  }
  return best
}

/** Sample a continuation of `prompt` (the context is cropped to the last block_size tokens). */
export async function generate(checkpointDir: string, opts: GenerateOptions): Promise<{ prompt: string; completion: string; tokens: number }> {
  const n = opts.tokens ?? 200
  const temperature = opts.temperature ?? 1
  if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`tokens must be a non-negative integer, got ${n}`)
  if (!(temperature >= 0 && Number.isFinite(temperature))) throw new RangeError(`temperature must be a finite number >= 0, got ${temperature}`)
  if (opts.topK !== undefined && !(Number.isInteger(opts.topK) && opts.topK >= 1)) throw new RangeError(`top-k must be a positive integer, got ${opts.topK}`)
  const model = await loadModel(checkpointDir)
  const ids = [...model.tokenizer.encode(opts.prompt, { onUnknown: opts.onUnknown })]
  if (ids.length === 0) throw new DataError('the prompt has no characters the model knows; give at least one character of its vocabulary')
  const session = await LogitsSession.create(model, { threads: opts.threads })
  const rng = new Mulberry32(opts.seed ?? 0)
  const T = model.config.block_size
  let completion = ''
  try {
    for (let i = 0; i < n; i++) {
      const id = sampleToken(await session.next(ids.slice(-T)), temperature, opts.topK, rng)
      ids.push(id)
      const piece = model.tokenizer.decode([id])
      completion += piece
      opts.onText?.(piece)
    }
  } finally {
    await session.release()
  }
  return { prompt: opts.prompt, completion, tokens: n }
}
