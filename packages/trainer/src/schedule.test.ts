import { describe, expect, it } from 'vitest'
import { lrAt } from './schedule'

describe('lrAt', () => {
  it('is constant for the constant schedule', () => {
    for (const s of [0, 1, 499, 10_000]) expect(lrAt({ kind: 'constant', lr: 3e-4 }, s)).toBe(3e-4)
  })

  it('warms up linearly, then follows a half cosine down to minLr', () => {
    const s = { kind: 'cosine', lr: 1e-3, warmup: 10, decaySteps: 110, minLr: 1e-4 } as const
    expect(lrAt(s, 0)).toBeCloseTo(1e-4, 12) // (0+1)/10 of lr
    expect(lrAt(s, 4)).toBeCloseTo(5e-4, 12)
    expect(lrAt(s, 9)).toBeCloseTo(1e-3, 12) // warmup ends at the full rate
    expect(lrAt(s, 10)).toBeCloseTo(1e-3, 12) // cosine starts at lr
    expect(lrAt(s, 60)).toBeCloseTo((1e-3 + 1e-4) / 2, 12) // halfway: the mean of lr and minLr
    expect(lrAt(s, 110)).toBeCloseTo(1e-4, 12)
    expect(lrAt(s, 500)).toBe(1e-4)
    for (let i = 10; i < 110; i++) expect(lrAt(s, i + 1)).toBeLessThanOrEqual(lrAt(s, i))
  })
})
