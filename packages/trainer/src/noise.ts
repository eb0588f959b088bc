/**
 * Dropout noise for training graphs built with `graph.dropoutNoise = true`: every dropout site is a uint16
 * graph input that we fill from our own seeded generator before each step. The generator's whole state is
 * four uint32s saved in the checkpoint, so a resumed run draws exactly the masks the uninterrupted run
 * would have, on any runtime.
 *
 * xoshiro128** rather than the data layer's mulberry32: the MoAS paper config needs ~80 M uint16 of noise
 * per step (attention-probability dropout is [B, H, T, T] per branch and layer), and xoshiro fills it about
 * 2.5x faster (≈2 ns per 32-bit word here), two uint16 per word.
 */
import type { HostTensor, Tensor } from '@moas/tensor-core'
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
    let s0 = st[0], s1 = st[1], s2 = st[2], s3 = st[3]
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
 * The noise feeds of one training graph: one reusable uint16 buffer per noise input (allocated once), refilled
 * in graph-input order by `fill()`. Buffers are padded to whole 32-bit words so the generator writes words.
 * (Reading words as two uint16 depends on byte order; every platform Node runs on is little-endian.)
 */
export class NoiseFeeder {
  readonly feeds: Record<string, HostTensor> = {}
  private readonly words: Uint32Array[] = []

  constructor(
    inputs: readonly Tensor[],
    private rng: Xoshiro128,
  ) {
    for (const t of inputs) {
      const shape = t.shape as number[]
      const n = shape.reduce((a, b) => a * b, 1)
      const buf = new ArrayBuffer(Math.ceil(n / 2) * 4)
      this.words.push(new Uint32Array(buf))
      this.feeds[t.name] = { dtype: 'uint16', shape, data: new Uint16Array(buf, 0, n) }
    }
  }

  /** Draw fresh noise for every dropout site (call once per forward pass). */
  fill(): void {
    for (const w of this.words) this.rng.fill(w)
  }

  /** Noise values per step (for sizing and reports). */
  get size(): number {
    return this.words.reduce((a, w) => a + w.length * 2, 0)
  }

  state(): NoiseState {
    return this.rng.state()
  }

  setState(state: readonly number[]): void {
    this.rng = Xoshiro128.fromState(state)
  }
}
