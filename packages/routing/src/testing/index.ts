/** Routing-specific test data; plain seeded samples come from tensor-core's randn / randHost. */
import { type HostTensor, hostTensor, mulberry32 } from '@moas/tensor-core'

export { randn } from '@moas/tensor-core/testing'

/**
 * Logits [..., S] whose values within a row are at least 0.4 apart (a shuffled ladder plus jitter), so a
 * finite-difference step never reorders the top-k.
 */
export function separatedLogits(shape: number[], seed: number): HostTensor {
  const S = shape[shape.length - 1]
  const rand = mulberry32(seed)
  const n = shape.reduce((a, b) => a * b, 1)
  const out = new Float64Array(n)
  for (let row = 0; row < n / S; row++) {
    const ladder = Array.from({ length: S }, (_, i) => (i - (S - 1) / 2) * 0.6 + (rand() - 0.5) * 0.2)
    for (let i = S - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1))
      ;[ladder[i], ladder[j]] = [ladder[j], ladder[i]]
    }
    out.set(ladder, row * S)
  }
  return hostTensor('float64', shape, out)
}
