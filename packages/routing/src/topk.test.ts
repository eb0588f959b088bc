import { Graph, type HostTensor, hostTensor, ops, Session } from '@moas/tensor-core'
import { gradcheck } from '@moas/tensor-core/testing'
import { describe, expect, it } from 'vitest'
import { randn, separatedLogits } from './testing/index'
import { topKGates } from './topk'

async function runTopK(gates: HostTensor, k: number, opts?: { renormalize?: boolean }) {
  const g = new Graph('topk')
  const x = g.input(
    'gates',
    gates.dtype,
    gates.shape.map((d, i) => (i < gates.shape.length - 1 ? `n${i}` : d)),
  )
  const r = topKGates(x, k, opts)
  for (const key of ['values', 'indices', 'weights', 'dense'] as const) g.output(key, r[key])
  return await (await Session.create(g)).run({ gates })
}

/** JS reference: indices of the k largest, descending, equal values by lower index first. */
function refTopK(row: ArrayLike<number>, k: number): number[] {
  return [...Array(row.length).keys()].sort((a, b) => row[b] - row[a] || a - b).slice(0, k)
}

describe('topKGates', () => {
  it('ONNX Runtime TopK puts the lower index first on ties (small and large expert axes, every k)', async () => {
    for (const S of [2, 3, 8, 64, 1000]) {
      const N = 40
      // values from a small set so nearly every row has ties, in shuffled positions
      const data = Float32Array.from(randn(N * S, S), (z) => Math.round(z * 2) / 4)
      for (const k of new Set([1, 2, Math.min(3, S), S >> 1 || 1, S])) {
        const out = await runTopK(hostTensor('float32', [N, S], data), k, { renormalize: false })
        const idx = Array.from(out.indices.data as BigInt64Array, Number)
        for (let n = 0; n < N; n++) expect(idx.slice(n * k, (n + 1) * k)).toEqual(refTopK(data.subarray(n * S, (n + 1) * S), k))
      }
    }
    // the classic case: all gates equal
    const eq = await runTopK(hostTensor('float32', [1, 4], [0.25, 0.25, 0.25, 0.25]), 2)
    expect(Array.from(eq.indices.data as BigInt64Array, Number)).toEqual([0, 1])
  })

  it('k = 1: weight is the raw gate; k >= 2: chosen gates renormalized; dense has exact zeros elsewhere', async () => {
    const gates = hostTensor('float64', [2, 3, 4], Float64Array.from(randn(24, 7), Math.exp))
    const G = gates.data as Float64Array
    for (const [k, renormalize] of [
      [1, undefined],
      [2, undefined],
      [3, undefined],
      [1, true],
      [2, false],
    ] as const) {
      const out = await runTopK(gates, k, renormalize === undefined ? undefined : { renormalize })
      const renorm = renormalize ?? k >= 2
      expect(out.weights.shape).toEqual([2, 3, k])
      expect(out.dense.shape).toEqual([2, 3, 4])
      const W = out.weights.data as Float64Array,
        D = out.dense.data as Float64Array,
        V = out.values.data as Float64Array
      for (let n = 0; n < 6; n++) {
        const row = G.subarray(n * 4, n * 4 + 4)
        const chosen = refTopK(row, k)
        const total = chosen.reduce((s, i) => s + row[i], 0)
        chosen.forEach((s, r) => {
          expect(V[n * k + r]).toBe(row[s])
          expect(W[n * k + r]).toBeCloseTo(renorm ? row[s] / total : row[s], 14)
          expect(D[n * 4 + s]).toBe(W[n * k + r])
        })
        for (let s = 0; s < 4; s++) if (!chosen.includes(s)) expect(D[n * 4 + s]).toBe(0)
        const sum = D.subarray(n * 4, n * 4 + 4).reduce((a, b) => a + b, 0)
        if (renorm) expect(sum).toBeCloseTo(1, 14)
      }
    }
  })

  for (const k of [1, 2]) {
    it(`k = ${k}: gradients of weights and dense match finite differences (softmax gates, no ties)`, async () => {
      const [N, S] = [6, 4]
      const res = await gradcheck(
        (g) => {
          const r = topKGates(ops.softmax(g.input('logits', 'float64', [N, S]), -1), k)
          return [r.dense, r.weights]
          // floor 1e-5: for k = 2 the renormalized weights do not depend on the unchosen logits at all (exact
          // zeros), so tiny gradients are held to an absolute 1e-11 rather than a relative error of rounding noise.
        },
        { feeds: { logits: separatedLogits([N, S], 11 + k) }, floor: 1e-5 },
      )
      expect(res.ok, res.summary).toBe(true)
      expect(res.checked).toBe(24)
    })
  }

  it('rejects k outside [1, S] and a symbolic expert axis', () => {
    const g = new Graph('bad')
    expect(() => topKGates(g.input('a', 'float32', [2, 3]), 4)).toThrow(/k must be an integer in \[1, 3\]/)
    expect(() => topKGates(g.input('b', 'float32', [2, 3]), 0)).toThrow(/k must be an integer/)
    expect(() => topKGates(g.input('c', 'float32', [2, 'S']), 1)).toThrow(/expert axis must be static/)
  })
})
