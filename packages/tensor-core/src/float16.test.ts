import { describe, expect, it } from 'vitest'
import { float16Bits, float16Values } from './dtype'
import { mulberry32 } from './init'

describe('float16Bits / float16Values', () => {
  it('encodes known values exactly (normals, subnormals, rounding to even, overflow, NaN)', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.5, 0x3800],
      [65504, 0x7bff],
      [65520, 0x7c00],
      [1e6, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -24, 0x0001],
      [2 ** -14, 0x0400],
      [1 + 2 ** -11, 0x3c00],
      [1 + 3 * 2 ** -11, 0x3c02], // ties go to the even mantissa
      [2 ** -26, 0x0000],
    ]
    expect(Array.from(float16Bits(cases.map(([v]) => v)))).toEqual(cases.map(([, b]) => b))
    expect(float16Bits([Number.NaN])[0] & 0x7c00).toBe(0x7c00)
    expect(float16Bits([Number.NaN])[0] & 0x3ff).not.toBe(0)
  })

  it('round-trips every finite half and rounds random floats to the nearest half', () => {
    const all = Uint16Array.from({ length: 0x10000 }, (_, i) => i).filter((b) => (b & 0x7c00) !== 0x7c00)
    expect(Array.from(float16Bits(float16Values(all)))).toEqual(Array.from(all).map((b) => (b === 0x8000 ? 0x8000 : b)))
    const rand = mulberry32(7)
    for (let i = 0; i < 5000; i++) {
      const x = (rand() - 0.5) * 2 ** (Math.floor(rand() * 30) - 14)
      const bits = float16Bits([x])[0]
      const h = float16Values([bits])[0]
      // no other half is closer: compare with both neighbours of the chosen pattern (same sign)
      for (const n of [bits - 1, bits + 1]) {
        if ((n & 0x7fff) === 0x7fff || (n & 0x8000) !== (bits & 0x8000) || (n & 0x7c00) === 0x7c00) continue
        expect(Math.abs(h - x), `${x}`).toBeLessThanOrEqual(Math.abs(float16Values([n])[0] - x))
      }
    }
  })
})
