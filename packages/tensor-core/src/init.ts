/** Parameter initialization from a seed, and the PRNG behind it, so the same seed gives the same weights everywhere. */
import type { Graph } from './graph'

/**
 * mulberry32: a tiny 32-bit PRNG, the generator of every random stream of the project (weight init, data
 * sampling, corpora, sampling, moas-kv's random control, benchmark and test inputs) but dropout noise, whose
 * volume takes a faster one (the trainer's Xoshiro128). Our own generator rather than Math.random, so every platform draws the same
 * numbers, and its whole state is one integer, trivially saved in a checkpoint for an exact resume.
 */
export class Mulberry32 {
  private s: number

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`)
    this.s = seed >>> 0
  }

  /** Next uniform 32-bit unsigned integer. */
  nextU32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0
    let t = this.s
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

/** mulberry32 as a function: uniform floats in [0, 1) from `seed`. */
export function mulberry32(seed: number): () => number {
  const rng = new Mulberry32(seed)
  return () => rng.next()
}

/** Standard normal samples by Box–Muller. */
export function normalSampler(rand: () => number): () => number {
  let spare: number | null = null
  return () => {
    if (spare !== null) {
      const s = spare
      spare = null
      return s
    }
    const u = 1 - rand()
    const v = rand()
    const r = Math.sqrt(-2 * Math.log(u))
    spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }
}

/** Initial values of every parameter of `graph`, following each parameter's declared init, in order. */
export function initParams(graph: Graph, seed: number): Map<string, Float32Array | Float64Array> {
  const normal = normalSampler(mulberry32(seed))
  const out = new Map<string, Float32Array | Float64Array>()
  for (const p of graph.params) {
    const n = (p.tensor.shape as number[]).reduce((a, b) => a * b, 1)
    const arr = p.tensor.dtype === 'float64' ? new Float64Array(n) : new Float32Array(n)
    if (p.init.kind === 'ones') arr.fill(1)
    else if (p.init.kind === 'normal') for (let i = 0; i < n; i++) arr[i] = normal() * (p.init as { std: number }).std
    out.set(p.tensor.name, arr)
  }
  return out
}

/** `n` float32 samples of N(0, std²) from `seed` (benchmark inputs, test data). */
export function randomNormal(n: number, seed: number, std = 1): Float32Array {
  const normal = normalSampler(mulberry32(seed))
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = std * normal()
  return out
}
