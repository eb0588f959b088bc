import { describe, expect, it } from 'vitest'
import { BatchSampler, evalWindows } from './batches.js'
import { DataError } from './errors.js'

const arange = (n: number) => Int32Array.from({ length: n }, (_, i) => i)
const rows = (a: BigInt64Array, T: number) => Array.from({ length: a.length / T }, (_, r) => [...a.slice(r * T, r * T + T)].map(Number))

describe('BatchSampler', () => {
  it('draws x = data[s:s+T], y = data[s+1:s+T+1] with s in [0, len-T)', () => {
    const tokens = arange(10) // token value = position, so a row reveals its start
    const sampler = new BatchSampler(tokens, 3, 4, 123)
    const seen = new Set<number>()
    for (let i = 0; i < 200; i++) {
      const { x, y } = sampler.next()
      expect(x.length).toBe(12)
      rows(x, 3).forEach((row, r) => {
        const s = row[0]
        expect(row).toEqual([s, s + 1, s + 2])
        expect(rows(y, 3)[r]).toEqual([s + 1, s + 2, s + 3])
        seen.add(s)
      })
    }
    expect([...seen].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6]) // every start in [0, 7), no other
  })

  it('nextInto fills caller buffers with the same rows as next()', () => {
    const tokens = arange(1000)
    const x = new BigInt64Array(8)
    const y = new BigInt64Array(8)
    const a = new BatchSampler(tokens, 4, 2, 3)
    const b = new BatchSampler(tokens, 4, 2, 3)
    for (let i = 0; i < 3; i++) {
      b.nextInto(x, y)
      expect({ x, y }).toEqual(a.next())
    }
    expect(() => b.nextInto(new BigInt64Array(7), y)).toThrow(DataError)
  })

  it('is deterministic per seed', () => {
    const tokens = arange(1000)
    const a = new BatchSampler(tokens, 8, 2, 5).next()
    expect(new BatchSampler(tokens, 8, 2, 5).next()).toEqual(a)
    expect(new BatchSampler(tokens, 8, 2, 6).next()).not.toEqual(a)
  })

  it('continues the same sequence after a JSON state round trip', () => {
    const tokens = arange(1000)
    const a = new BatchSampler(tokens, 8, 4, 99)
    a.next()
    a.next()
    const state = JSON.parse(JSON.stringify(a.state()))
    expect(state).toMatchObject({ blockSize: 8, batchSize: 4, tokens: 1000, step: 2 })
    const b = BatchSampler.fromState(tokens, state)
    for (let i = 0; i < 5; i++) expect(b.next()).toEqual(a.next())
    expect(b.state()).toEqual(a.state())
  })

  it('rejects bad arguments and mismatched states', () => {
    expect(() => new BatchSampler(arange(3), 3, 1, 0)).toThrow(DataError)
    expect(() => new BatchSampler(arange(10), 0, 1, 0)).toThrow(/blockSize/)
    expect(() => new BatchSampler(arange(10), 2, 1.5, 0)).toThrow(/batchSize/)
    const state = new BatchSampler(arange(10), 3, 1, 0).state()
    expect(() => BatchSampler.fromState(arange(11), state)).toThrow(/same data/)
    expect(() => BatchSampler.fromState(arange(10), { ...state, rng: -1 })).toThrow(/rng/)
  })
})

describe('evalWindows', () => {
  it('uses windows at 0, T, 2T, … while s + T + 1 ≤ len', () => {
    const ev = evalWindows(arange(10), 3)
    expect(ev.starts).toEqual([0, 3, 6])
    expect(ev.targets).toBe(9)
    const batches = [...ev.batches(2)]
    expect(batches.map((b) => b.size)).toEqual([2, 1])
    expect(rows(batches[0].x, 3)).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ])
    expect(rows(batches[0].y, 3)).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ])
    expect(rows(batches[1].x, 3)).toEqual([[6, 7, 8]])
    expect(rows(batches[1].y, 3)).toEqual([[7, 8, 9]])
  })

  it('drops a short tail and handles tiny inputs', () => {
    expect(evalWindows(arange(9), 3).starts).toEqual([0, 3]) // 6 + 3 + 1 = 10 > 9
    expect(evalWindows(arange(4), 3).targets).toBe(3)
    expect(evalWindows(arange(3), 3).targets).toBe(0)
    expect([...evalWindows(new Int32Array(0), 3).batches(4)]).toEqual([])
  })
})
