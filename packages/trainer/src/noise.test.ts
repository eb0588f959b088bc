import { Graph } from '@moas/tensor-core'
import { describe, expect, it } from 'vitest'
import { NoiseFeeder, Xoshiro128 } from './noise'

const words = (g: Xoshiro128, n: number) => {
  const a = new Uint32Array(n)
  g.fill(a)
  return [...a]
}

describe('Xoshiro128', () => {
  it('matches the reference xoshiro128** output for a known state', () => {
    // The reference C implementation (prng.di.unimi.it/xoshiro128starstar.c) from s = {1, 2, 3, 4} starts
    // 11520, 0, 5927040, 70819200; the first is rotl(2·5, 7)·9 = 1280·9 by hand.
    expect(words(Xoshiro128.fromState([1, 2, 3, 4]), 4)).toEqual([11520, 0, 5927040, 70819200])
  })

  it('continues the same stream after a state round trip, and seeds differ', () => {
    const a = new Xoshiro128(7)
    words(a, 100)
    const b = Xoshiro128.fromState(JSON.parse(JSON.stringify(a.state())))
    expect(words(b, 50)).toEqual(words(a, 50))
    expect(words(new Xoshiro128(7), 8)).toEqual(words(new Xoshiro128(7), 8))
    expect(words(new Xoshiro128(8), 8)).not.toEqual(words(new Xoshiro128(7), 8))
  })

  it('is roughly uniform on uint16 halves', () => {
    const a = new Uint32Array(1 << 16)
    new Xoshiro128(1).fill(a)
    const halves = new Uint16Array(a.buffer)
    const below = halves.filter((v) => v < 6554).length / halves.length // P(noise < 0.1·65536)
    expect(below).toBeGreaterThan(0.095)
    expect(below).toBeLessThan(0.105)
  })

  it('refuses an invalid state', () => {
    expect(() => Xoshiro128.fromState([0, 0, 0, 0])).toThrow(/not all zero/)
    expect(() => Xoshiro128.fromState([1, 2, 3] as any)).toThrow(/four uint32/)
  })
})

describe('keep masks', () => {
  it('fillKeep makes the decisions of fill() read as uint16 pairs, for every tail length, and consumes the same words', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 6, 7, 13, 64, 1001]) {
      for (const threshold of [0, 1, 6554, 65535]) {
        const a = new Xoshiro128(11 + n)
        const b = new Xoshiro128(11 + n)
        const w = new Uint32Array(Math.ceil(n / 2))
        a.fill(w)
        const halves = new Uint16Array(w.buffer, 0, n)
        const keep = new Uint8Array(Math.ceil(n / 4) * 4)
        b.fillKeep(keep, n, threshold)
        expect([...keep.subarray(0, n)]).toEqual([...halves].map((h) => (h >= threshold ? 1 : 0)))
        expect(b.state()).toEqual(a.state()) // the same stream position afterwards
      }
    }
  })

  it('refuses an unaligned or unpadded buffer', () => {
    const g = new Xoshiro128(1)
    expect(() => g.fillKeep(new Uint8Array(6), 6, 100)).toThrow(/padded to whole words/)
    expect(() => g.fillKeep(new Uint8Array(12).subarray(1, 9), 8, 100)).toThrow(/aligned/)
  })
})

describe('NoiseFeeder', () => {
  it('reuses one bool buffer per mask input and refills it deterministically, dropping at each site\'s threshold', () => {
    const g = new Graph('n')
    const a = { input: g.input('keep/a', 'bool', [3, 5]), threshold: 6554 } // odd element count: padded to whole words
    const b = { input: g.input('keep/b', 'bool', [400]), threshold: 32768 }
    const f = new NoiseFeeder([a, b], new Xoshiro128(3))
    expect(f.size).toBe(415)
    const bufA = f.feeds['keep/a'].data
    expect(f.feeds['keep/a'].dtype).toBe('bool')
    f.fill()
    const first = [...bufA]
    f.fill()
    expect(f.feeds['keep/a'].data).toBe(bufA) // same buffer, new values
    expect([...bufA]).not.toEqual(first)
    expect(bufA.length).toBe(15)
    const kept = [...(f.feeds['keep/b'].data as Uint8Array)].filter((v) => v === 1).length
    expect(kept).toBeGreaterThan(150) // half kept at threshold 32768
    expect(kept).toBeLessThan(250)
    const g2 = new NoiseFeeder([a, b], new Xoshiro128(3))
    g2.fill()
    expect([...g2.feeds['keep/a'].data]).toEqual(first)
  })
})
