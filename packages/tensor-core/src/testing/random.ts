/** Seeded random test data, shared by every package's tests (gradients are checked with gradcheck). */
import { mulberry32, normalSampler } from '../init'
import { type HostTensor, hostTensor } from '../runtime'

/** n standard-normal samples (times std) from a seeded PRNG. */
export function randn(n: number, seed: number, std = 1): Float64Array {
  const normal = normalSampler(mulberry32(seed))
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) out[i] = normal() * std
  return out
}

/** A float32 or float64 host tensor of seeded normal samples. */
export function randHost(dtype: 'float32' | 'float64', shape: number[], seed: number, std = 1): HostTensor {
  const data = randn(
    shape.reduce((a, b) => a * b, 1),
    seed,
    std,
  )
  return hostTensor(dtype, shape, dtype === 'float32' ? Float32Array.from(data) : data)
}
