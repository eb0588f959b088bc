/** Seeded random test data (gradients are checked with tensor-core's gradcheck). */
import { type HostTensor, hostTensor, mulberry32, normalSampler } from '@moas/tensor-core'

export function randn(n: number, seed: number, std = 1): Float64Array {
  const normal = normalSampler(mulberry32(seed))
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) out[i] = normal() * std
  return out
}

export function randHost(dtype: 'float32' | 'float64', shape: number[], seed: number, std = 1): HostTensor {
  const data = randn(shape.reduce((a, b) => a * b, 1), seed, std)
  return hostTensor(dtype, shape, dtype === 'float32' ? Float32Array.from(data) : data)
}
