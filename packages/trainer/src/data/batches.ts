import { Mulberry32 } from '@moas/tensor-core'
import { DataError } from './errors.js'

/** A batch of B sequences of T token ids, row-major [B, T], int64 as ONNX models take them. */
export interface Batch {
  x: BigInt64Array
  y: BigInt64Array
}

/** Everything needed to continue a sampler's sequence exactly (JSON-serializable, for checkpoints). */
export interface BatchSamplerState {
  blockSize: number
  batchSize: number
  /** Number of tokens the sampler was built on; checked on restore to catch resuming on other data. */
  tokens: number
  /** mulberry32 state. */
  rng: number
  /** Batches drawn so far (informational). */
  step: number
}

function checkPositiveInt(name: string, v: unknown): asserts v is number {
  if (!Number.isInteger(v) || (v as number) < 1) throw new DataError(`${name} must be a positive integer, got ${v}`)
}

/** Copy tokens[s .. s+T) into row `row` of `x`, and tokens[s+1 .. s+T+1) into `y`. */
function fillRow(tokens: Int32Array, s: number, T: number, row: number, x: BigInt64Array, y: BigInt64Array) {
  const o = row * T
  for (let t = 0; t < T; t++) {
    x[o + t] = BigInt(tokens[s + t])
    y[o + t] = BigInt(tokens[s + t + 1])
  }
}

/**
 * Random training batches as the paper draws them (nanoGPT's get_batch): each row starts at a uniform
 * s in [0, len - T), x = data[s : s+T], y = data[s+1 : s+T+1]. The draws come from a seeded PRNG whose
 * state can be saved, so a resumed run sees exactly the batches an uninterrupted run would have.
 */
export class BatchSampler {
  private rng: Mulberry32
  private step = 0

  constructor(
    readonly tokens: Int32Array,
    readonly blockSize: number,
    readonly batchSize: number,
    seed: number,
  ) {
    checkPositiveInt('blockSize', blockSize)
    checkPositiveInt('batchSize', batchSize)
    if (tokens.length <= blockSize) {
      throw new DataError(`need more than blockSize=${blockSize} tokens to draw a batch (x and its shifted y), got ${tokens.length}`)
    }
    this.rng = new Mulberry32(seed)
  }

  next(): Batch {
    const { blockSize: T, batchSize: B } = this
    return this.nextInto(new BigInt64Array(B * T), new BigInt64Array(B * T))
  }

  /** Like next(), into caller-owned buffers of batchSize · blockSize (the training loop reuses one pair). */
  nextInto(x: BigInt64Array, y: BigInt64Array): Batch {
    const { tokens, blockSize: T, batchSize: B } = this
    if (x.length !== B * T || y.length !== B * T)
      throw new DataError(`nextInto: buffers must hold batchSize·blockSize = ${B * T} tokens, got ${x.length} and ${y.length}`)
    for (let b = 0; b < B; b++) fillRow(tokens, this.rng.int(tokens.length - T), T, b, x, y)
    this.step++
    return { x, y }
  }

  /** Advance past `n` batches without filling them (the same draws as n calls of next()). */
  skip(n: number): void {
    const span = this.tokens.length - this.blockSize
    for (let i = 0; i < n * this.batchSize; i++) this.rng.int(span)
    this.step += n
  }

  state(): BatchSamplerState {
    return { blockSize: this.blockSize, batchSize: this.batchSize, tokens: this.tokens.length, rng: this.rng.state(), step: this.step }
  }

  /** A sampler that continues exactly where the one that produced `state` was. */
  static fromState(tokens: Int32Array, state: BatchSamplerState): BatchSampler {
    const st = state as Partial<BatchSamplerState> | null
    if (typeof st !== 'object' || st === null) throw new DataError('batch sampler state must be an object')
    if (st.tokens !== tokens.length) {
      throw new DataError(`batch sampler state was saved for ${st.tokens} tokens but the data has ${tokens.length}; resume on the same data`)
    }
    const rng = st.rng
    if (!Number.isInteger(rng) || (rng as number) < 0 || (rng as number) > 0xffffffff) {
      throw new DataError(`batch sampler state has an invalid rng ${rng}; expected a uint32`)
    }
    const sampler = new BatchSampler(tokens, st.blockSize as number, st.batchSize as number, 0)
    sampler.rng = Mulberry32.fromState(rng as number)
    sampler.step = Number.isInteger(st.step) ? (st.step as number) : 0
    return sampler
  }
}

/** One batch of evaluation windows: `size` rows of T tokens ([size, T]); the last batch may be smaller. */
export interface EvalBatch extends Batch {
  size: number
}

export interface EvalWindows {
  /** Window starts: 0, T, 2T, … */
  starts: number[]
  /** Number of predicted targets (= starts.length · T): the denominator of the mean eval loss. */
  targets: number
  /** The windows in order, `batchSize` at a time. */
  batches(batchSize: number): Generator<EvalBatch>
}

/**
 * The deterministic full-evaluation protocol: non-overlapping windows at s = 0, T, 2T, … while
 * s + T + 1 ≤ len, inputs [s, s+T), targets [s+1, s+T+1). Every target after position 0 is predicted
 * once, with up to T-1 tokens of context; a tail of fewer than T targets is left out so every window
 * has the same shape.
 */
export function evalWindows(tokens: Int32Array, blockSize: number): EvalWindows {
  checkPositiveInt('blockSize', blockSize)
  const T = blockSize
  const count = tokens.length > T ? Math.floor((tokens.length - 1) / T) : 0
  const starts = Array.from({ length: count }, (_, i) => i * T)
  return {
    starts,
    targets: count * T,
    *batches(batchSize: number) {
      checkPositiveInt('batchSize', batchSize)
      for (let i = 0; i < count; i += batchSize) {
        const size = Math.min(batchSize, count - i)
        const x = new BigInt64Array(size * T)
        const y = new BigInt64Array(size * T)
        for (let r = 0; r < size; r++) fillRow(tokens, starts[i + r], T, r, x, y)
        yield { x, y, size }
      }
    },
  }
}
