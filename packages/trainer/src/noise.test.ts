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

  it('fillKeepCausal gives each row its visible keys (padded to four) from the stream in order, and writes nothing else', () => {
    const matrices = 3,
      T = 12,
      threshold = 20000
    const a = new Xoshiro128(5)
    const b = new Xoshiro128(5)
    const out = new Uint8Array(matrices * T * T).fill(7) // 7: not written
    a.fillKeepCausal(out, matrices, T, threshold)
    let words = 0
    for (let m = 0; m < matrices; m++) {
      for (let i = 0; i < T; i++) {
        const width = 4 * (Math.floor(i / 4) + 1) // keys 0..i rounded up to whole groups of four
        const row = new Uint8Array(width)
        b.fillKeep(row, width, threshold) // the same stream, row after row
        words += width / 2
        const at = (m * T + i) * T
        expect([...out.subarray(at, at + width)]).toEqual([...row])
        expect([...out.subarray(at + width, at + T)].every((x) => x === 7)).toBe(true)
      }
    }
    expect(a.state()).toEqual(b.state())
    expect(words).toBe((matrices * T * (T / 2 + 2)) / 2) // what NoiseFeeder.drawn counts, in words
    expect(() => a.fillKeepCausal(new Uint8Array(3 * 36), 3, 6, threshold)).toThrow(/multiple of 4/)
  })

  it('refuses an unaligned or unpadded buffer', () => {
    const g = new Xoshiro128(1)
    expect(() => g.fillKeep(new Uint8Array(6), 6, 100)).toThrow(/padded to whole words/)
    expect(() => g.fillKeep(new Uint8Array(12).subarray(1, 9), 8, 100)).toThrow(/aligned/)
  })
})

describe('NoiseFeeder', () => {
  it("reuses one bool buffer per mask input and refills it deterministically, dropping at each site's threshold", () => {
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

describe('NoiseFeeder layouts for causal attention masks', () => {
  const g = new Graph('c')
  const attn = { input: g.input('keep/attn', 'bool', [2, 8, 8]), threshold: 6554, causal: true }
  const resid = { input: g.input('keep/resid', 'bool', [2, 8, 3]), threshold: 6554 }
  const odd = { input: g.input('keep/odd', 'bool', [1, 6, 6]), threshold: 6554, causal: true } // T not a multiple of 4

  it("'causal-rows' (the default) draws only the rows' visible keys of causal sites, the rest in full", () => {
    const f = new NoiseFeeder([attn, resid, odd], new Xoshiro128(9))
    expect(f.layout).toBe('causal-rows')
    expect(f.size).toBe(128 + 48 + 36)
    expect(f.drawn).toBe(2 * 8 * (8 / 2 + 2) + 48 + 36)
    f.fill()
    const ref = new Xoshiro128(9)
    const rows = new Uint8Array(128)
    ref.fillKeepCausal(rows, 2, 8, 6554)
    const rest = new Uint8Array(48)
    ref.fillKeep(rest, 48, 6554)
    expect([...f.feeds['keep/attn'].data]).toEqual([...rows])
    expect([...f.feeds['keep/resid'].data]).toEqual([...rest])
    expect(f.feeds['keep/attn'].data[7]).toBe(0) // row 0 draws keys 0..3 only: key 7 stays 0
  })

  it("'full' draws every entry, as version-1 trainer states expect", () => {
    const f = new NoiseFeeder([attn, resid], new Xoshiro128(9), 'full')
    expect(f.drawn).toBe(f.size)
    f.fill()
    const ref = new Xoshiro128(9)
    const all = new Uint8Array(128)
    ref.fillKeep(all, 128, 6554)
    expect([...f.feeds['keep/attn'].data]).toEqual([...all])
  })
})
