import { Graph, type HostTensor, hostTensor, ops, Session } from '@moas/tensor-core'
import { gradcheck } from '@moas/tensor-core/testing'
import { describe, expect, it } from 'vitest'
import { mseBalanceLoss, switchBalanceLoss } from './balance'
import { randn, separatedLogits } from './testing/index'
import { topKGates } from './topk'

/** Softmax rows of random logits: realistic gates [N, S]. */
function softmaxRows(N: number, S: number, seed: number, scale = 1): Float64Array {
  const z = randn(N * S, seed)
  const out = new Float64Array(N * S)
  for (let n = 0; n < N; n++) {
    const e = Array.from(z.subarray(n * S, (n + 1) * S), (v) => Math.exp(v * scale))
    const sum = e.reduce((a, b) => a + b, 0)
    e.forEach((v, s) => (out[n * S + s] = v / sum))
  }
  return out
}

async function losses(gates: HostTensor, k: number, indices?: HostTensor) {
  const g = new Graph('balance')
  const x = g.input('gates', 'float64', ['batch', 'seq', gates.shape[2]])
  const idx = indices ? g.input('indices', 'int64', ['batch', 'seq', k]) : topKGates(x, k).indices
  g.output('mse', mseBalanceLoss(x))
  g.output('sw', switchBalanceLoss(x, idx))
  const out = await (await Session.create(g)).run(indices ? { gates, indices } : { gates })
  return { mse: out.mse.data[0] as number, sw: out.sw.data[0] as number, shape: out.mse.shape }
}

describe('balance losses', () => {
  it('match plain-JS values: mean_s (mean gate − 1/S)² and S·Σ f·P over every (token, choice) pair', async () => {
    const [B, T, S, k] = [3, 5, 4, 2]
    const N = B * T
    const G = softmaxRows(N, S, 1, 2)
    const { mse, sw, shape } = await losses(hostTensor('float64', [B, T, S], G), k)
    expect(shape).toEqual([])
    const P = Array.from({ length: S }, (_, s) => Array.from({ length: N }, (_, n) => G[n * S + s]).reduce((a, b) => a + b, 0) / N)
    expect(mse).toBeCloseTo(P.reduce((a, p) => a + (p - 1 / S) ** 2, 0) / S, 14)
    const f = new Array(S).fill(0)
    for (let n = 0; n < N; n++) {
      const row = Array.from(G.subarray(n * S, (n + 1) * S))
      ;[...row.keys()]
        .sort((a, b) => row[b] - row[a])
        .slice(0, k)
        .forEach((s) => (f[s] += 1 / (N * k)))
    }
    expect(sw).toBeCloseTo(S * f.reduce((a, fs, s) => a + fs * P[s], 0), 14)
  })

  it('are 0 (mse) and 1 (switch) at uniform gates; switch is 1 whenever choices are uniform', async () => {
    const [B, T, S] = [2, 3, 3]
    const uniform = hostTensor('float64', [B, T, S], new Float64Array(B * T * S).fill(1 / S))
    const u = await losses(uniform, 1)
    expect(u.mse).toBe(0)
    expect(u.sw).toBeCloseTo(1, 15)
    // non-uniform gates, but each expert chosen by exactly a third of the tokens
    const skewed = hostTensor('float64', [B, T, S], softmaxRows(B * T, S, 5, 3))
    const picks = hostTensor('int64', [B, T, 1], [0, 1, 2, 0, 1, 2])
    expect((await losses(skewed, 1, picks)).sw).toBeCloseTo(1, 14)
    // and all tokens on one expert: S · P_s, larger than 1 when that expert also has the larger mean gate
    const collapsed = hostTensor('int64', [B, T, 1], [0, 0, 0, 0, 0, 0])
    const oneHot = hostTensor(
      'float64',
      [B, T, S],
      Array.from({ length: B * T * S }, (_, i) => (i % S === 0 ? 0.8 : 0.1)),
    )
    expect((await losses(oneHot, 1, collapsed)).sw).toBeCloseTo(3 * 0.8, 14)
  })

  it('gradients with respect to the router logits match finite differences', async () => {
    const [B, T, S, k] = [2, 4, 3, 2]
    const res = await gradcheck(
      (g) => {
        const gates = ops.softmax(g.input('logits', 'float64', [B, T, S]), -1)
        return [mseBalanceLoss(gates), switchBalanceLoss(gates, topKGates(gates, k).indices)]
      },
      { feeds: { logits: separatedLogits([B, T, S], 9) } },
    )
    expect(res.ok, res.summary).toBe(true)
    expect(res.checked).toBe(24)
  })

  it('reject gates without a token axis and non-int64 indices', () => {
    const g = new Graph('bad')
    expect(() => mseBalanceLoss(g.input('a', 'float32', [3]))).toThrow(/at least one token axis/)
    const gates = g.input('b', 'float32', [4, 3])
    expect(() => switchBalanceLoss(gates, g.input('i', 'int32', [4, 1]))).toThrow(/indices must be int64/)
    expect(() => switchBalanceLoss(gates, g.input('j', 'int64', [4]))).toThrow(/must have the rank of gates/)
  })
})
