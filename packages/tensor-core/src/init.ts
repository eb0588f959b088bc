/** Parameter initialization from a seed: a small PRNG so the same seed gives the same weights everywhere. */
import type { Graph } from './graph'

/** mulberry32: tiny, fast, and good enough for weight init and data sampling; state is one uint32. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
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
