import { describe, expect, it } from 'vitest'
import { RoutingTally } from './routing-tally'

describe('RoutingTally', () => {
  it('counts shares, mean gates, entropy and the balance measure by hand-computed values', () => {
    const t = new RoutingTally(3)
    // two positions, gates read at an offset (a flat [positions, gates] array)
    const flat = [0.9, 0.7, 0.2, 0.1, 0, 0.5, 0.5, 0]
    t.add(flat, 1) // 0.7 0.2 0.1 → choice 0
    t.add(flat, 4) // 0 0.5 0.5 → tie: choice 1 (the lower index)
    expect(t.positions).toBe(2)
    expect(t.share()).toEqual([0.5, 0.5, 0])
    const h1 = -(0.7 * Math.log(0.7) + 0.2 * Math.log(0.2) + 0.1 * Math.log(0.1))
    const h2 = Math.log(2)
    expect(t.entropy()).toBeCloseTo((h1 + h2) / 2, 12)
    const means = [0.35, 0.35, 0.3]
    t.meanGates().forEach((m, i) => expect(m).toBeCloseTo(means[i], 12))
    expect(t.balance()).toBeCloseTo(means.reduce((a, m) => a + (m - 1 / 3) ** 2, 0) / 3, 12)
  })

  it('a given choice overrides the highest gate (moas-topk, GQE: what the router chose)', () => {
    const t = new RoutingTally(2)
    t.add([0.9, 0.1], 0, 1)
    expect(t.share()).toEqual([0, 1])
    expect(RoutingTally.shareOf([2, 2, 0, 1], 3)).toEqual([0.25, 0.25, 0.5])
    expect(RoutingTally.shareOf([], 2)).toEqual([0, 0])
  })
})
