/**
 * mulberry32: a tiny 32-bit PRNG. We use our own generator (never Math.random) so that corpora and batch
 * orders are identical on every platform and the whole state is one integer, trivially saved in a
 * checkpoint for an exact resume.
 */
export class Mulberry32 {
  private s: number

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`)
    this.s = seed >>> 0
  }

  /** Next uniform 32-bit unsigned integer. */
  nextU32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0)
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296
  }

  /** Uniform integer in [0, n), n ≤ 2^32. (Bias is below 2^-32·n: irrelevant at our sizes.) */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }

  /** Uniform integer in [lo, hi] inclusive. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1)
  }

  /** A uniformly chosen element. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]
  }

  /** The full generator state (a uint32); `Mulberry32.fromState(rng.state())` continues the same sequence. */
  state(): number {
    return this.s
  }

  static fromState(state: number): Mulberry32 {
    if (!Number.isInteger(state) || state < 0 || state > 0xffffffff) {
      throw new RangeError(`PRNG state must be a uint32, got ${state}`)
    }
    return new Mulberry32(state)
  }
}
