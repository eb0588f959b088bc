// The linear-layer gradient path (MatMul rule for x·Wᵀ, Transpose cancellation, pruning of unused
// backward nodes): float64 finite differences, plus the shape of the emitted backward graph.
import { describe, expect, it } from 'vitest'
import { Graph, grad, hostTensor, ops, type Tensor } from './index'
import { mulberry32, normalSampler } from './init'
import { testSession } from './testing/provider'

const randn = (n: number, seed: number) => {
  const normal = normalSampler(mulberry32(seed))
  return Float64Array.from({ length: n }, normal)
}

/** loss = Σ linear(x, W, b) ⊙ R; returns analytic dW (and db) and a central-difference check of every element. */
async function checkLinear(xShape: number[], out: number, withBias: boolean, symbolic: boolean) {
  const inF = xShape[xShape.length - 1]
  const g = new Graph('lin')
  const x = g.input('x', 'float64', symbolic ? [...xShape.slice(0, -1).map((_, i) => `d${i}`), inF] : xShape)
  const w = g.param('w', [out, inF], { init: { kind: 'zeros' }, dtype: 'float64' })
  const b = withBias ? g.param('b', [out], { init: { kind: 'zeros' }, dtype: 'float64' }) : null
  const y = ops.linear(x, w, b)
  const r = g.input('r', 'float64', y.shape)
  const loss = g.output('loss', ops.reduceSum(ops.mul(y, r), [...y.shape.keys()]))
  const wrt = [w, ...(b ? [b] : [])]
  grad(loss, wrt).forEach((gw, i) => g.output(`g${i}`, gw))
  const s = await testSession(g)
  const rows = xShape.slice(0, -1).reduce((p, q) => p * q, 1)
  const feeds = {
    x: hostTensor('float64', xShape, randn(rows * inF, 1)),
    r: hostTensor('float64', [...xShape.slice(0, -1), out], randn(rows * out, 2)),
    w: hostTensor('float64', [out, inF], randn(out * inF, 3)),
    ...(b ? { b: hostTensor('float64', [out], randn(out, 4)) } : {}),
  } as Record<string, ReturnType<typeof hostTensor>>
  const base = await s.run(feeds)
  let maxErr = 0
  for (const [i, t] of wrt.entries()) {
    const analytic = base[`g${i}`].data as Float64Array
    expect(base[`g${i}`].shape).toEqual(t.shape)
    const p = feeds[t.name].data as Float64Array
    for (let k = 0; k < p.length; k++) {
      const h = 1e-6 * Math.max(1, Math.abs(p[k]))
      const orig = p[k]
      p[k] = orig + h
      const up = (await s.run(feeds, ['loss'])).loss.data[0] as number
      p[k] = orig - h
      const down = (await s.run(feeds, ['loss'])).loss.data[0] as number
      p[k] = orig
      const numeric = (up - down) / (2 * h)
      maxErr = Math.max(maxErr, Math.abs(analytic[k] - numeric) / Math.max(1e-8, Math.abs(analytic[k]) + Math.abs(numeric)))
    }
    expect(Math.max(...Array.from(analytic, Math.abs))).toBeGreaterThan(0)
  }
  return { maxErr, graph: g }
}

const backwardOps = (g: Graph) => g.nodes.filter((n) => n.name.startsWith('grad/')).map((n) => n.op)

describe('linear layer gradients', () => {
  it('match float64 finite differences for 2-D, 3-D and symbolic inputs, with and without bias', async () => {
    for (const [xShape, out, bias, sym] of [
      [[5, 4], 3, false, false],
      [[2, 3, 4], 5, true, false],
      [[2, 3, 4], 5, true, true],
    ] as const) {
      const { maxErr } = await checkLinear([...xShape], out, bias, sym)
      expect(maxErr, `x [${xShape}] → ${out}, bias ${bias}, symbolic ${sym}`).toBeLessThan(1e-6)
    }
  })

  it('computes dW as one GEMM of gᵀ·x (no Transpose of the result), and no dL/dx for a data input', async () => {
    const { graph } = await checkLinear([6, 4], 3, false, false)
    expect(backwardOps(graph).filter((o) => o === 'MatMul')).toHaveLength(1)
    // The returned dW (read through the 'g0' output's Identity) is the MatMul itself: gᵀ·x, already [out, in].
    const dW = graph.outputs.find((t) => t.name === 'g0')!.producer!.inputs[0] as Tensor
    expect(dW.producer!.op).toBe('MatMul')
    expect(dW.shape).toEqual([3, 4])
    expect(dW.producer!.inputs[1]!.name).toBe('x')
  })

  it('emits dL/dh for a hidden layer but no dL/dx for the data input (two stacked layers)', () => {
    const g = new Graph('two')
    const x = g.input('x', 'float32', [6, 4])
    const w1 = g.param('w1', [5, 4], { init: { kind: 'zeros' } })
    const w2 = g.param('w2', [3, 5], { init: { kind: 'zeros' } })
    const loss = ops.reduceSum(ops.linear(ops.linear(x, w1), w2), [0, 1])
    grad(loss, [w1, w2])
    // dW2, dh (feeds dW1), dW1; no dx.
    expect(backwardOps(g).filter((o) => o === 'MatMul')).toHaveLength(3)
  })
})
