import { describe, expect, it } from 'vitest'
import { checkSampling, sampleToken, seededRandom } from './sampling'

describe('sampleToken', () => {
  const logits = [0, 3, 1, 2.9]
  it('is greedy at temperature 0 (ties: lowest id)', () => {
    const r = seededRandom(0)
    expect(sampleToken(logits, { temperature: 0 }, r)).toBe(1)
    expect(sampleToken([1, 5, 5], { temperature: 0 }, r)).toBe(1)
  })

  it('top-k keeps only the k most likely', () => {
    const r = seededRandom(1)
    const seen = new Set(Array.from({ length: 300 }, () => sampleToken(logits, { topK: 2 }, r)))
    expect([...seen].sort()).toEqual([1, 3])
  })

  it('top-p keeps the smallest most-likely set reaching p', () => {
    const r = seededRandom(2)
    // softmax of [0, 3, 1, 2.9]: p(1) ≈ 0.48, p(3) ≈ 0.43: p = 0.5 needs both, p = 0.4 only the first
    expect(new Set(Array.from({ length: 300 }, () => sampleToken(logits, { topP: 0.4 }, r)))).toEqual(new Set([1]))
    expect([...new Set(Array.from({ length: 300 }, () => sampleToken(logits, { topP: 0.5 }, r)))].sort()).toEqual([1, 3])
  })

  it('samples the softmax distribution at temperature 1 and sharpens it below 1', () => {
    const r = seededRandom(3)
    const freq = (t: number) => {
      const counts = [0, 0, 0, 0]
      for (let i = 0; i < 6000; i++) counts[sampleToken(logits, { temperature: t }, r)]++
      return counts.map((c) => c / 6000)
    }
    const z = logits.reduce((a, v) => a + Math.exp(v), 0)
    freq(1).forEach((f, i) => expect(f).toBeCloseTo(Math.exp(logits[i]) / z, 1))
    expect(freq(0.3)[1]).toBeGreaterThan(0.5)
  })

  it('repeats exactly for a seed', () => {
    const draw = (seed: number) => {
      const r = seededRandom(seed)
      return Array.from({ length: 20 }, () => sampleToken(logits, {}, r))
    }
    expect(draw(7)).toEqual(draw(7))
    expect(draw(7)).not.toEqual(draw(8))
  })

  it('refuses bad options with the allowed range', () => {
    expect(() => checkSampling({ temperature: -1 })).toThrow(/temperature must be a finite number >= 0/)
    expect(() => checkSampling({ topK: 0 })).toThrow(/top-k must be a positive integer/)
    expect(() => checkSampling({ topP: 0 })).toThrow(/top-p must be in \(0, 1\]/)
  })
})
