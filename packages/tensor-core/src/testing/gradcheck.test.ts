import { describe, expect, it } from 'vitest'
import { GRADIENTS } from '../gradients'
import * as ops from '../ops'
import { gradcheck } from './gradcheck'

describe('gradcheck (the checker itself)', () => {
  it('passes a correct gradient with errors far below 1e-6', async () => {
    const r = await gradcheck((g) => ops.tanh(ops.mul(g.input('x', 'float64', [3, 4]), g.param('w', [4], { init: { kind: 'zeros' }, dtype: 'float64' }))))
    expect(r.ok, r.summary).toBe(true)
    expect(r.maxError).toBeLessThan(1e-8)
    expect(r.checked).toBe(16)
  })

  it('fails when a gradient rule is wrong, even slightly', async () => {
    const rule = GRADIENTS.Tanh
    // 1 − y² + 1e-4: off by a tiny amount that a loose check would miss.
    GRADIENTS.Tanh = ({ g, y: [y] }) => [ops.mul(g, ops.sub(1.0001, ops.mul(y, y)))]
    try {
      const r = await gradcheck((g) => ops.tanh(g.input('x', 'float64', [5])))
      expect(r.ok).toBe(false)
      expect(r.maxError).toBeGreaterThan(1e-6)
      expect(r.summary).toMatch(/^x: max error/)
    } finally {
      GRADIENTS.Tanh = rule
    }
  })

  it('flags an all-zero gradient as vacuous unless allowed', async () => {
    const build = (g: import('../graph').Graph) => {
      const x = g.input('x', 'float64', [3])
      g.input('unused', 'float64', [2])
      return ops.exp(x)
    }
    const r = await gradcheck(build)
    expect(r.vacuous).toEqual(['unused'])
    expect(r.ok).toBe(false)
    expect((await gradcheck(build, { allowZeroGrad: ['unused'] })).ok).toBe(true)
  })

  it('binds symbolic dims and samples a subset of coordinates', async () => {
    const r = await gradcheck((g) => ops.reduceMean(ops.exp(g.input('x', 'float64', ['batch', 7])), [0]), { dims: { batch: 5 }, maxPerTensor: 10 })
    expect(r.feeds.x.shape).toEqual([5, 7])
    expect(r.checked).toBe(10)
    expect(r.ok, r.summary).toBe(true)
  })
})
