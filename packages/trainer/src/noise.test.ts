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

describe('NoiseFeeder', () => {
  it('reuses one buffer per noise input and refills it deterministically', () => {
    const g = new Graph('n')
    const a = g.input('noise/a', 'uint16', [3, 5]) // odd element count: padded to whole words
    const b = g.input('noise/b', 'uint16', [4])
    const f = new NoiseFeeder([a, b], new Xoshiro128(3))
    const bufA = f.feeds['noise/a'].data
    f.fill()
    const first = [...bufA]
    f.fill()
    expect(f.feeds['noise/a'].data).toBe(bufA) // same buffer, new values
    expect([...bufA]).not.toEqual(first)
    expect(bufA.length).toBe(15)
    const g2 = new NoiseFeeder([a, b], new Xoshiro128(3))
    g2.fill()
    expect([...g2.feeds['noise/a'].data]).toEqual(first)
  })
})
