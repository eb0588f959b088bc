import { describe, expect, it } from 'vitest'
import { Graph, grad, hostTensor, ops } from './index'
import { testSession } from './testing/provider'

describe('smoke', () => {
  it('builds, differentiates and runs a tiny graph', async () => {
    const g = new Graph('t')
    const x = g.input('x', 'float64', ['batch', 3])
    const w = g.param('w', [4, 3], { init: { kind: 'normal', std: 1 }, dtype: 'float64' })
    const y = ops.linear(x, w)
    const loss = ops.reduceSum(ops.mul(y, y), [0, 1])
    g.output('loss', loss)
    const [gw] = grad(loss, [w])
    g.output('gw', gw)
    const s = await testSession(g)
    const xv = [1, 2, 3, 4, 5, 6]
    const wv = [1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1]
    const out = await s.run({ x: hostTensor('float64', [2, 3], xv), w: hostTensor('float64', [4, 3], wv) })
    // y = x W^T; loss = sum y^2; dW = 2 y^T x
    const Y = [
      [1, 2, 3, 6],
      [4, 5, 6, 15],
    ]
    expect(out.loss.data[0]).toBeCloseTo(Y.flat().reduce((a, b) => a + b * b, 0))
    const dW = [0, 1, 2, 3].flatMap((o) => [0, 1, 2].map((i) => 2 * (Y[0][o] * xv[i] + Y[1][o] * xv[3 + i])))
    expect(Array.from(out.gw.data as Float64Array)).toEqual(dW)
  })
})
