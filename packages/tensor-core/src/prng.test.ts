import { describe, expect, it } from 'vitest'
import { Mulberry32, mulberry32, randomNormal } from './init'

describe('Mulberry32', () => {
  it('is deterministic and resumable from its state', () => {
    const a = new Mulberry32(42)
    const first = Array.from({ length: 5 }, () => a.nextU32())
    expect(Array.from({ length: 5 }, () => new Mulberry32(42).nextU32())[0]).toBe(first[0])
    const saved = a.state()
    const rest = Array.from({ length: 5 }, () => a.nextU32())
    const b = Mulberry32.fromState(JSON.parse(JSON.stringify(saved)))
    expect(Array.from({ length: 5 }, () => b.nextU32())).toEqual(rest)
  })

  it('produces the reference mulberry32 sequence', () => {
    // Seed 1, from an independent Python transcription of the C reference (Tommy Ettinger).
    const r = new Mulberry32(1)
    expect([r.nextU32(), r.nextU32(), r.nextU32()]).toEqual([2693262067, 11749833, 2265367787])
  })

  it('draws integers in range, roughly uniformly', () => {
    const r = new Mulberry32(7)
    const counts = new Array(10).fill(0)
    for (let i = 0; i < 10_000; i++) counts[r.int(10)]++
    for (const c of counts) expect(c).toBeGreaterThan(900)
    for (let i = 0; i < 1000; i++) expect(r.range(3, 5)).toBeGreaterThanOrEqual(3)
  })
})

describe('mulberry32 and randomNormal', () => {
  it('the function form draws the class sequence as floats', () => {
    const f = mulberry32(5)
    const r = new Mulberry32(5)
    for (let i = 0; i < 5; i++) expect(f()).toBe(r.nextU32() / 4294967296)
  })

  it('normal samples have the asked scale, and the same seed gives the same samples', () => {
    const x = randomNormal(20_000, 3, 0.5)
    const mean = x.reduce((a, b) => a + b, 0) / x.length
    const sd = Math.sqrt(x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length)
    expect(Math.abs(mean)).toBeLessThan(0.02)
    expect(sd).toBeGreaterThan(0.48)
    expect(sd).toBeLessThan(0.52)
    expect(randomNormal(4, 3, 0.5)).toEqual(x.slice(0, 4))
  })
})
