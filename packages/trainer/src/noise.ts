/**
 * Dropout masks for training graphs built with `graph.dropoutNoise = true`: every dropout site is a bool
 * keep-mask graph input that we fill from our own seeded generator before each step: each element takes
 * one uniform uint16 (two per 32-bit word) and is kept where it is ≥ the site's threshold. The generator's
 * whole state is four uint32s saved in the checkpoint, so a resumed run draws exactly the masks the
 * uninterrupted run would have, on any runtime.
 *
 * xoshiro128** rather than tensor-core's mulberry32 (every other stream's generator): the MoAS paper config
 * draws tens of millions of mask elements per step (attention-probability dropout is [B, H, T, T] per branch
 * and layer), and xoshiro draws them faster (docs/performance.md, "The training step near the roofline").
 */
import type { DropoutMaskInput, HostTensor } from '@moas/tensor-core'
import { DataError } from './data/errors'

export type NoiseState = [number, number, number, number]

/** xoshiro128** (Blackman & Vigna), seeded through splitmix32 so nearby seeds give unrelated streams. */
export class Xoshiro128 {
  private readonly s = new Uint32Array(4)

  constructor(seed: number) {
    let x = seed >>> 0
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0
      let z = x
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      this.s[i] = z ^ (z >>> 16)
    }
    if (this.s.every((v) => v === 0)) this.s[0] = 1 // the all-zero state is a fixed point
  }

  /** Fill `out` with uniform uint32 words. */
  fill(out: Uint32Array): void {
    const st = this.s
    let s0 = st[0],
      s1 = st[1],
      s2 = st[2],
      s3 = st[3]
    for (let i = 0; i < out.length; i++) {
      const x = Math.imul(s1, 5)
      out[i] = Math.imul((x << 7) | (x >>> 25), 9)
      const t = s1 << 9
      s2 ^= s0
      s3 ^= s1
      s1 ^= s2
      s0 ^= s3
      s2 ^= t
      s3 = (s3 << 11) | (s3 >>> 21)
    }
    st[0] = s0
    st[1] = s1
    st[2] = s2
    st[3] = s3
  }

  /**
   * Fill `out[0..n)` with keep flags (1 where a uniform uint16 is ≥ threshold, else 0), consuming exactly
   * ceil(n / 2) words: the same stream and the same decisions as comparing fill()'s words read as uint16
   * pairs. Whole groups of four flags are stored as one little-endian word (`out` must start 4-byte
   * aligned and hold a multiple of 4 bytes), with a branch-free compare: close to fill()'s cost
   * (`pnpm bench --bench dropout-mask` times both draws).
   */
  fillKeep(out: Uint8Array, n: number, threshold: number): void {
    if (out.byteOffset % 4 || out.byteLength % 4 || n > out.length)
      throw new RangeError('fillKeep needs a 4-byte aligned buffer padded to whole words and at least n long')
    const quads = new Uint32Array(out.buffer, out.byteOffset, out.byteLength / 4)
    const groups = n >>> 2
    this.keepQuads(quads, 0, groups, threshold)
    // The last n mod 4 flags: one word per two, as fill() would have drawn them.
    const tail = new Uint32Array(Math.ceil((n - 4 * groups) / 2))
    this.fill(tail)
    for (let j = 4 * groups; j < n; j++) {
      const w = tail[(j - 4 * groups) >>> 1]
      out[j] = ((j - 4 * groups) & 1 ? w >>> 16 : w & 0xffff) >= threshold ? 1 : 0
    }
  }

  /**
   * Keep flags for `matrices` causal [T, T] attention masks laid out one after another in `out`: row i
   * (query i) gets the flags of keys 0..i, padded up to a whole group of four (fillKeep's words, row after
   * row); the entries further right are never written, so they keep what the buffer held (zero in a fresh
   * one). Those entries multiply probabilities that are exactly 0 (DropoutMaskInput.causal), so the
   * training step is the same whatever they hold, and this draws ~half the words of a full mask. T must be
   * a multiple of 4 (rows start on whole words).
   */
  fillKeepCausal(out: Uint8Array, matrices: number, T: number, threshold: number): void {
    if (T % 4 || out.byteOffset % 4 || out.length < matrices * T * T)
      throw new RangeError('fillKeepCausal needs T a multiple of 4 and a 4-byte aligned buffer of matrices·T·T flags')
    const quads = new Uint32Array(out.buffer, out.byteOffset, (matrices * T * T) >>> 2)
    const rowQuads = T >>> 2
    for (let row = 0; row < matrices * T; row++) this.keepQuads(quads, row * rowQuads, ((row % T) >>> 2) + 1, threshold)
  }

  /**
   * quads[from .. from + count) = four keep flags each (little-endian bytes), from two generator words:
   * flag = uint16 half ≥ threshold, the halves in fill()'s order. The generator step is inlined as in
   * fill() rather than comparing fill()'s words in a second pass, which measured slower. keep =
   * 1 ^ ((half − threshold) >>> 31): the sign bit is set exactly when half < threshold (branch-free).
   */
  private keepQuads(quads: Uint32Array, from: number, count: number, threshold: number): void {
    const st = this.s
    let s0 = st[0],
      s1 = st[1],
      s2 = st[2],
      s3 = st[3]
    const end = from + count
    for (let i = from; i < end; i++) {
      let x = Math.imul(s1, 5)
      const a = Math.imul((x << 7) | (x >>> 25), 9)
      let t = s1 << 9
      s2 ^= s0
      s3 ^= s1
      s1 ^= s2
      s0 ^= s3
      s2 ^= t
      s3 = (s3 << 11) | (s3 >>> 21)
      x = Math.imul(s1, 5)
      const b = Math.imul((x << 7) | (x >>> 25), 9)
      t = s1 << 9
      s2 ^= s0
      s3 ^= s1
      s1 ^= s2
      s0 ^= s3
      s2 ^= t
      s3 = (s3 << 11) | (s3 >>> 21)
      quads[i] =
        (1 ^ (((a & 0xffff) - threshold) >>> 31)) |
        ((1 ^ (((a >>> 16) - threshold) >>> 31)) << 8) |
        ((1 ^ (((b & 0xffff) - threshold) >>> 31)) << 16) |
        ((1 ^ (((b >>> 16) - threshold) >>> 31)) << 24)
    }
    st[0] = s0
    st[1] = s1
    st[2] = s2
    st[3] = s3
  }

  state(): NoiseState {
    return [this.s[0], this.s[1], this.s[2], this.s[3]]
  }

  static fromState(state: readonly number[]): Xoshiro128 {
    const ok = Array.isArray(state) && state.length === 4 && state.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffffffff)
    if (!ok || state.every((v) => v === 0)) throw new DataError(`dropout noise state must be four uint32 (not all zero), got ${JSON.stringify(state)}`)
    const g = new Xoshiro128(0)
    g.s.set(state)
    return g
  }
}

/**
 * How a feeder spends the stream on causal attention masks (DropoutMaskInput.causal):
 * - 'causal-rows': only each row's visible keys (fillKeepCausal), about half the words; the default;
 * - 'full': every entry (fillKeep), as runs before trainer state version 2 drew them, so that their
 *   checkpoints resume with exactly the masks the uninterrupted run would have drawn.
 * Sites that are not causal, or whose T is not a multiple of 4, are drawn in full either way.
 */
export const NOISE_LAYOUTS = ['causal-rows', 'full'] as const
export type NoiseLayout = (typeof NOISE_LAYOUTS)[number]

/**
 * The dropout-mask feeds of one training graph: one reusable bool buffer per mask input (allocated once,
 * padded to whole 32-bit words), refilled in graph-input order by `fill()`. (Reading a word as two uint16
 * and storing four flags as one word depend on byte order; every platform Node runs on is little-endian.)
 */
export class NoiseFeeder {
  readonly feeds: Record<string, HostTensor> = {}
  private readonly masks: { data: Uint8Array; n: number; threshold: number; causal: { matrices: number; T: number } | null }[] = []

  constructor(
    inputs: readonly DropoutMaskInput[],
    private rng: Xoshiro128,
    readonly layout: NoiseLayout = 'causal-rows',
  ) {
    for (const { input, threshold, causal } of inputs) {
      const shape = input.shape as number[]
      const n = shape.reduce((a, b) => a * b, 1)
      const T = shape[shape.length - 1]
      const rows = layout === 'causal-rows' && causal && T % 4 === 0 ? { matrices: n / (T * T), T } : null
      const data = new Uint8Array(Math.ceil(n / 4) * 4)
      this.masks.push({ data, n, threshold, causal: rows })
      this.feeds[input.name] = { dtype: 'bool', shape, data: data.subarray(0, n) }
    }
  }

  /** Draw fresh masks for every dropout site (call once per forward pass). */
  fill(): void {
    for (const m of this.masks) {
      if (m.causal) this.rng.fillKeepCausal(m.data, m.causal.matrices, m.causal.T, m.threshold)
      else this.rng.fillKeep(m.data, m.n, m.threshold)
    }
  }

  /** Mask elements fed per forward pass (for sizing and reports). */
  get size(): number {
    return this.masks.reduce((a, m) => a + m.n, 0)
  }

  /** Keep flags drawn per forward pass (causal rows count only what fillKeepCausal writes). */
  get drawn(): number {
    return this.masks.reduce((a, m) => a + (m.causal ? m.causal.matrices * m.causal.T * (m.causal.T / 2 + 2) : m.n), 0)
  }

  state(): NoiseState {
    return this.rng.state()
  }

  setState(state: readonly number[]): void {
    this.rng = Xoshiro128.fromState(state)
  }
}
