/**
 * Decoding with a KV cache. One merged decoder graph per model (gpt's buildGpt with kvCache) serves
 * both prefill (the whole prompt, empty past) and decode (one new token per row against the cache);
 * DecoderSession owns the cache between calls: left padding, positions, the attention mask and the
 * context limit (block_size: the position embedding has that many rows).
 */
import { type AttentionKernel, memoryEfficientAttention } from '@moas/attention-schemes'
import { buildGpt, DECODER_IO, type GptConfig, kvCacheBytesPerToken, kvHeadsPerLayer, VARIANTS, variantSpec } from '@moas/gpt'
import { float16Bits, float16Values, Graph, type HostTensor, hostTensor, type Provider, Session } from '@moas/tensor-core'
import { InferenceError } from './errors'
import { LevelCacheStore } from './level-cache'

export interface DecoderGraphOptions {
  /** Add `gates.{i}` / `chosen.{i}` outputs per routed layer (the routing views). */
  routing?: boolean
  /** Graph dtype: float32, or float16 (weights, activations and the KV cache; an export option). */
  dtype?: 'float32' | 'float16'
  /** The attention core's implementation (default: the composed reference; see @moas/attention-schemes). */
  attentionKernel?: AttentionKernel
  /** Whether the graph takes left-padded batches (default true; see buildGpt's `padding`). */
  padding?: boolean
  /** What the graph returns of the cache (default 'present'; see buildGpt's `cacheOutputs`). */
  cacheOutputs?: 'present' | 'appended' | 'levels'
}

/** The merged decoder graph of `cfg` (inputs and outputs named as in DECODER_IO). */
export function buildDecoderGraph(cfg: GptConfig, opts: DecoderGraphOptions = {}): Graph {
  const g = new Graph(`decoder-${cfg.attention}`)
  buildGpt(g, cfg, {
    batch: DECODER_IO.dims.batch,
    seq: DECODER_IO.dims.seq,
    training: false,
    withTargets: false,
    kvCache: true,
    routingStats: opts.routing,
    dtype: opts.dtype,
    attentionKernel: opts.attentionKernel,
    padding: opts.padding,
    cacheOutputs: opts.cacheOutputs,
  })
  return g
}

export interface DecoderSessionOptions {
  provider?: Provider
  threads?: number
  /** Also return each routed layer's gates and chosen experts (for weights given as a map). */
  routing?: boolean
  /**
   * The attention core of a session built from weights: 'composed' (default: the reference; takes
   * left-padded batches of prompts of different lengths) or 'memory-efficient' (ONNX Runtime's
   * GroupQueryAttention, memory linear in the context: long prompts; every prompt of a batch must have
   * the same length, since that graph takes no padding).
   */
  attention?: 'composed' | 'memory-efficient'
  /**
   * For a variant that routes what each token caches (moas-kv), from weights with the composed core:
   * 'levels' (default) keeps only what each token wrote (LevelCacheStore); 'full' keeps every token's
   * heads repeated to the query heads, the layout of exported folders.
   */
  cache?: 'levels' | 'full'
}

/** The model a session runs: its config and either its weights (embedded into the graph here) or exported ONNX bytes. */
export type DecoderModel = (
  | { config: GptConfig; params: ReadonlyMap<string, Float32Array> }
  | { config: GptConfig; onnx: Uint8Array; externalData?: { path: string; data: Uint8Array }[] }
) & {
  /** The graph's float dtype (default float32); an exported float16 graph takes and returns a float16 cache. */
  dtype?: 'float32' | 'float16'
}

/** One run of the decoder: logits of every new position and the routing outputs, if asked for. */
export interface DecoderStep {
  /** [B, T, V] row-major. */
  logits: Float32Array
  /** Tokens per row in this run. */
  length: number
  /** gates.{i} and chosen.{i} tensors (routing sessions only). */
  routing: Record<string, HostTensor>
}

type CacheArray = Float32Array | Uint16Array

/** Cache positions a kept cache buffer grows by, so it is reallocated once per this many decode steps. */
const CACHE_GROWTH = 256

export class DecoderSession {
  private past: Record<string, HostTensor> = {}
  /** Per past input, the buffer its cache lives in (sessions built from weights, which return only the appended positions). */
  private buffers = new Map<string, CacheArray>()
  private mask: number[][] = []
  private positions: number[] = []
  /** The level cache (levels sessions). */
  private store: LevelCacheStore | null = null

  private constructor(
    private readonly session: Session,
    readonly config: GptConfig,
    readonly provider: Provider,
    /** float32, or float16 for an exported float16 graph (its cache is float16 too). */
    readonly dtype: 'float32' | 'float16',
    /** Whether the graph takes left-padded batches (false for the memory-efficient kernel). */
    readonly padding: boolean = true,
    /** Whether the graph returns only the appended positions' K/V and this session keeps the cache. */
    private readonly keepsCache: boolean = false,
    /** Whether the cache holds each token's chosen level only (cacheOutputs 'levels'). */
    readonly levels: boolean = false,
    /** Whether runs return the routing outputs. */
    private readonly routing: boolean = false,
  ) {}

  static async create(model: DecoderModel, opts: DecoderSessionOptions = {}): Promise<DecoderSession> {
    const efficient = opts.attention === 'memory-efficient'
    if (opts.attention !== undefined && opts.attention !== 'composed' && !efficient)
      throw new InferenceError(`attention '${opts.attention}' is not a kernel; use 'composed' or 'memory-efficient'`)
    if (efficient && 'onnx' in model)
      throw new InferenceError("attention: 'memory-efficient' builds the graph from weights; an exported ONNX model runs the kernel it was exported with")
    // From weights the graph returns only the new positions' K/V and the session keeps the cache: ONNX
    // Runtime returning the whole present each step costs more than the step's kernels at long contexts.
    // An exported model has the present outputs ONNX decoder clients expect.
    if (opts.cache !== undefined && opts.cache !== 'levels' && opts.cache !== 'full') throw new InferenceError(`cache '${opts.cache}': use 'levels' or 'full'`)
    const routesCache = !!variantSpec(model.config.attention).levelCache
    if (opts.cache === 'levels' && (!routesCache || 'onnx' in model || efficient || (model.dtype ?? 'float32') !== 'float32'))
      throw new InferenceError(
        `cache 'levels' keeps what each token wrote, for variants that route it (${VARIANTS.filter((v) => variantSpec(v).levelCache).join(', ')}) built from float32 weights with the composed core; this session has '${model.config.attention}'${'onnx' in model ? ', an exported graph' : ''}${efficient ? ", attention 'memory-efficient'" : ''}`,
      )
    const levels = routesCache && opts.cache !== 'full' && !('onnx' in model) && !efficient && (model.dtype ?? 'float32') === 'float32'
    const graph = () =>
      buildDecoderGraph(model.config, {
        routing: opts.routing,
        dtype: model.dtype,
        cacheOutputs: levels ? 'levels' : 'appended',
        ...(efficient ? { attentionKernel: memoryEfficientAttention, padding: false } : {}),
      })
    const session =
      'onnx' in model
        ? await Session.create(model.onnx, { provider: opts.provider, threads: opts.threads, externalData: model.externalData })
        : await Session.create(graph(), {
            provider: opts.provider,
            threads: opts.threads,
            params: model.dtype === 'float16' ? halfParams(model.params) : model.params,
          })
    const names = session.outputNames
    for (const want of [DECODER_IO.logits, 'onnx' in model ? DECODER_IO.presentKey(0) : levels ? DECODER_IO.newLevelKey(0, 0) : DECODER_IO.appendedKey(0)])
      if (!names.includes(want))
        throw new InferenceError(`the ONNX model has no '${want}' output; it is not a moas decoder export (outputs: ${names.slice(0, 6).join(', ')})`)
    return new DecoderSession(session, model.config, opts.provider ?? 'cpu', model.dtype ?? 'float32', !efficient, !('onnx' in model), levels, !!opts.routing)
  }

  /** Rows in the current batch. */
  get batch(): number {
    return this.mask.length
  }

  /** Cached positions (including left padding): the P of the next run. */
  get pastLength(): number {
    return this.mask[0]?.length ?? 0
  }

  /** Bytes the cache holds now: what the present tensors of the last run occupy (levels: the held entries). */
  get cacheBytes(): number {
    if (this.store) return this.store.bytes
    return Object.values(this.past).reduce((n, t) => n + (t.data as Float32Array | Uint16Array).byteLength, 0)
  }

  /** KV heads per layer in the cache the graph returned (0 before the first run). */
  get cachedHeads(): number {
    return this.past[DECODER_IO.pastKey(0)]?.shape[1] ?? 0
  }

  /** kvCacheBytesPerToken of the model in this session's dtype: what one cached position costs (all layers, K and V). */
  get cacheBytesPerToken(): number {
    return kvCacheBytesPerToken(this.config, this.dtype === 'float16' ? 2 : 4)
  }

  /**
   * Start a new batch: the prompts (token ids, at least one each), left-padded to the longest, in one
   * prefill run. Returns the logits of every prompt position ([B, L, V], padding rows included).
   */
  async prefill(prompts: readonly (readonly number[])[]): Promise<DecoderStep> {
    if (prompts.length === 0) throw new InferenceError('prefill needs at least one prompt')
    const L = Math.max(...prompts.map((p) => p.length))
    prompts.forEach((p, b) => {
      if (p.length === 0) throw new InferenceError(`prompt ${b} is empty; give every prompt at least one token`)
    })
    if (!this.padding && prompts.some((p) => p.length !== L))
      throw new InferenceError(
        `this session's graph (attention 'memory-efficient') takes no padding, and the prompts have lengths ${[...new Set(prompts.map((p) => p.length))].join(', ')}; give prompts of one length, or use the composed attention for padded batches`,
      )
    this.checkContext(L)
    const d = this.config.n_embd / this.config.n_head
    const heads = kvHeadsPerLayer(this.config)
    this.past = {}
    if (this.levels) this.store = new LevelCacheStore(this.config, prompts.length)
    else
      for (let i = 0; i < this.config.n_layer; i++) {
        this.past[DECODER_IO.pastKey(i)] = hostTensor(this.dtype, [prompts.length, heads, 0, d])
        this.past[DECODER_IO.pastValue(i)] = hostTensor(this.dtype, [prompts.length, heads, 0, d])
      }
    this.mask = prompts.map(() => [])
    this.positions = prompts.map(() => 0)
    const ids = prompts.map((p) => [...Array(L - p.length).fill(0), ...p])
    const valid = prompts.map((p) => [...Array(L - p.length).fill(0), ...Array(p.length).fill(1)])
    return this.run(ids, valid)
  }

  /** One new token per row (the batch of the last prefill). Returns logits [B, 1, V]. */
  async step(tokens: readonly number[]): Promise<DecoderStep> {
    if (this.batch === 0) throw new InferenceError('step before prefill: start a batch with prefill(prompts)')
    if (tokens.length !== this.batch) throw new InferenceError(`step got ${tokens.length} tokens for a batch of ${this.batch} rows`)
    this.checkContext(this.pastLength + 1)
    return this.run(
      tokens.map((t) => [t]),
      tokens.map(() => [1]),
    )
  }

  private checkContext(total: number): void {
    const max = this.config.block_size
    if (total > max)
      throw new InferenceError(
        `a context of ${total} positions exceeds the model's block_size of ${max} (its position embedding has ${max} rows); shorten the prompt or generate fewer tokens (generate() slides a window instead)`,
      )
  }

  private async run(ids: number[][], valid: number[][]): Promise<DecoderStep> {
    const B = ids.length
    const T = ids[0].length
    const positions = valid.map((row, b) => {
      let p = this.positions[b]
      return row.map((v) => (v ? p++ : 0))
    })
    const mask = this.mask.map((m, b) => [...m, ...valid[b]])
    // a level cache's graph takes the validity of the new positions only: held entries carry their own
    const attention = this.store ? valid : mask
    const out = await this.session.run({
      ...(this.store ? this.store.feeds() : this.past),
      [DECODER_IO.inputIds]: hostTensor('int64', [B, T], ids.flat()),
      [DECODER_IO.attentionMask]: hostTensor('int64', [B, attention[0].length], attention.flat()),
      [DECODER_IO.positionIds]: hostTensor('int64', [B, T], positions.flat()),
    })
    this.mask = mask
    this.positions = valid.map((row, b) => this.positions[b] + row.reduce((n, v) => n + v, 0))
    const used = new Set<string>([DECODER_IO.logits])
    if (this.store) {
      this.store.append(out, valid)
      for (let i = 0; i < this.config.n_layer; i++) {
        this.config.kv_levels!.forEach((_, j) => used.add(DECODER_IO.newLevelKey(i, j)).add(DECODER_IO.newLevelValue(i, j)))
        if (!this.routing) used.add(DECODER_IO.chosen(i))
      }
    }
    for (let i = 0; i < this.config.n_layer && !this.store; i++) {
      const pairs = this.keepsCache
        ? [
            [DECODER_IO.appendedKey(i), DECODER_IO.pastKey(i)],
            [DECODER_IO.appendedValue(i), DECODER_IO.pastValue(i)],
          ]
        : [
            [DECODER_IO.presentKey(i), DECODER_IO.pastKey(i)],
            [DECODER_IO.presentValue(i), DECODER_IO.pastValue(i)],
          ]
      for (const [output, past] of pairs) {
        this.past[past] = this.keepsCache ? this.append(past, out[output]) : out[output]
        used.add(output)
      }
    }
    const routing = Object.fromEntries(Object.entries(out).filter(([name]) => !used.has(name)))
    const raw = out[DECODER_IO.logits].data
    const logits = raw instanceof Uint16Array ? float16Values(raw) : (raw as Float32Array)
    for (let i = 0; i < logits.length; i++)
      if (!Number.isFinite(logits[i])) throw new InferenceError(`the model produced a non-finite logit (${logits[i]}); its weights are corrupt or it diverged`)
    return { logits, length: T, routing }
  }

  /**
   * The cache of `past` grown by the run's new positions [B, heads, T, d], in place in its buffer: each
   * (row, head) block of P positions moves up to its slot in the [B, heads, P + T, d] layout (last block
   * first, so no block overwrites one not yet moved) and the new positions go after it. One memmove of
   * the cache per step, against ONNX Runtime allocating and returning a whole new present.
   */
  private append(past: string, appended: HostTensor): HostTensor {
    const old = this.past[past]
    const [B, heads, T, d] = appended.shape
    const P = old.shape[2]
    const n = B * heads * (P + T) * d
    let buf = this.buffers.get(past)
    if (!buf || buf.length < n) {
      const positions = Math.max(P + T, Math.min(Math.ceil((P + T) / CACHE_GROWTH) * CACHE_GROWTH, this.config.block_size))
      const grown = this.dtype === 'float16' ? new Uint16Array(B * heads * positions * d) : new Float32Array(B * heads * positions * d)
      if (P) for (let r = 0; r < B * heads; r++) grown.set((old.data as CacheArray).subarray(r * P * d, (r + 1) * P * d) as never, r * (P + T) * d)
      buf = grown
      this.buffers.set(past, buf)
    } else if (P) for (let r = B * heads - 1; r > 0; r--) buf.copyWithin(r * (P + T) * d, r * P * d, (r + 1) * P * d)
    const src = appended.data as CacheArray
    for (let r = 0; r < B * heads; r++) buf.set(src.subarray(r * T * d, (r + 1) * T * d) as never, r * (P + T) * d + P * d)
    return hostTensor(this.dtype, [B, heads, P + T, d], buf.subarray(0, n))
  }

  async release(): Promise<void> {
    this.buffers.clear()
    this.past = {}
    this.store = null
    await this.session.release()
  }
}

/** Weights as float16 bit patterns, for a float16 graph. */
export function halfParams(params: ReadonlyMap<string, Float32Array>): Map<string, Uint16Array> {
  return new Map([...params].map(([name, w]) => [name, float16Bits(w)]))
}
