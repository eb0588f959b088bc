/**
 * The one sampler: a next token from logits with temperature, top-k and top-p (nucleus), from a
 * caller-owned seeded random source so generations repeat exactly. Softmax in float64.
 */
import { mulberry32 } from '@moas/tensor-core'

export interface SamplingOptions {
  /** Softmax temperature (default 1); 0 is greedy (the most likely token, lowest id on ties). */
  temperature?: number
  /** Keep only the k most likely tokens (default: all). */
  topK?: number
  /** Keep the smallest set of most likely tokens whose probability reaches p (default 1: all). */
  topP?: number
}

/** A uniform [0, 1) source; seededRandom gives the reproducible one moas uses. */
export type RandomSource = () => number
export const seededRandom = (seed: number): RandomSource => mulberry32(seed)

/** Validates sampling options; RangeError naming the option and its allowed range. */
export function checkSampling(opts: SamplingOptions): Required<SamplingOptions> {
  const temperature = opts.temperature ?? 1
  if (!(Number.isFinite(temperature) && temperature >= 0)) throw new RangeError(`temperature must be a finite number >= 0, got ${opts.temperature}`)
  if (opts.topK !== undefined && opts.topK !== Infinity && !(Number.isInteger(opts.topK) && opts.topK >= 1))
    throw new RangeError(`top-k must be a positive integer, got ${opts.topK}`)
  if (opts.topP !== undefined && !(opts.topP > 0 && opts.topP <= 1)) throw new RangeError(`top-p must be in (0, 1], got ${opts.topP}`)
  return { temperature, topK: opts.topK ?? Infinity, topP: opts.topP ?? 1 }
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i
  return best
}

/** Draw a token id from logits. */
export function sampleToken(logits: ArrayLike<number>, opts: SamplingOptions, random: RandomSource): number {
  const { temperature, topK, topP } = checkSampling(opts)
  const best = argmax(logits)
  if (temperature === 0) return best
  const V = logits.length
  // Candidates by decreasing logit (ties: lower id first), cut by top-k, then by top-p.
  const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b] - logits[a] || a - b)
  const k = Math.min(V, topK)
  const p = new Float64Array(k)
  let sum = 0
  for (let j = 0; j < k; j++) sum += p[j] = Math.exp((logits[order[j]] - logits[best]) / temperature)
  let keep = k
  if (topP < 1) {
    let mass = 0
    for (let j = 0; j < k; j++) {
      mass += p[j] / sum
      if (mass >= topP) {
        keep = j + 1
        break
      }
    }
  }
  let total = 0
  for (let j = 0; j < keep; j++) total += p[j]
  let u = random() * total
  for (let j = 0; j < keep; j++) {
    u -= p[j]
    if (u < 0) return order[j]
  }
  return order[keep - 1]
}
