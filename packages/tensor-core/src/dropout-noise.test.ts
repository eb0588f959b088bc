// Noise-input dropout: the graph takes a bool keep mask per site (drawn by the caller: the boundary of
// uint16 noise against the threshold is the trainer's, tested in its noise.test.ts), scales what it keeps,
// passes the same mask back, and multiplies by the mask (no Where, no compare: see ops.dropout).
import { describe, expect, it } from 'vitest'
import { Graph, grad, hostTensor, ops } from './index'
import { testSession } from './testing/provider'

describe('noise-input dropout', () => {
  it('drops exactly where the keep mask is false, scales the rest by 1/(1 − round(ratio·65536)/65536), and passes the same mask back', async () => {
    const g = new Graph('drop')
    g.dropoutNoise = true
    const x = g.input('x', 'float64', [6])
    const w = g.param('w', [6], { init: { kind: 'ones' }, dtype: 'float64' })
    const y = g.output('y', ops.dropout(ops.mul(x, w), 0.25, true))
    const [gw] = grad(ops.reduceSum(y, [0]), [w])
    g.output('gw', gw)
    expect(g.nodes.map((n) => n.op)).not.toContain('Where')
    expect(g.nodes.map((n) => n.op)).not.toContain('Greater')
    const threshold = Math.round(0.25 * 65536) // 16384
    expect(g.dropoutMasks.map((m) => [m.input.dtype, m.input.shape, m.threshold])).toEqual([['bool', [6], threshold]])
    const kept = [false, false, true, true, true, false]
    const xs = [1, -2, 3, -4, 5, 6]
    const out = await (await testSession(g)).run({
      x: hostTensor('float64', [6], xs),
      w: hostTensor('float64', [6], [1, 1, 1, 1, 1, 1]),
      [g.dropoutMasks[0].input.name]: hostTensor('bool', [6], kept.map(Number)),
    })
    const scale = 1 / (1 - threshold / 65536)
    expect(Array.from(out.y.data as Float64Array)).toEqual(xs.map((v, i) => (kept[i] ? v * scale : 0 * v)))
    expect(Array.from(out.gw.data as Float64Array)).toEqual(xs.map((v, i) => (kept[i] ? v * scale : 0 * v)))
  })

  it('is the identity when the ratio rounds to a zero threshold, or outside training', () => {
    const g = new Graph('none')
    g.dropoutNoise = true
    const x = g.input('x', 'float32', [4])
    expect(ops.dropout(x, 1e-7, true)).toBe(x)
    expect(ops.dropout(x, 0.5, false)).toBe(x)
  })

  it('dropoutUnscaled keeps the same elements unscaled and returns the scale; without noise inputs the scale is 1', async () => {
    const g = new Graph('unscaled')
    g.dropoutNoise = true
    const x = g.input('x', 'float64', [4])
    const d = ops.dropoutUnscaled(x, 0.25, true)
    g.output('y', d.y)
    const threshold = Math.round(0.25 * 65536)
    expect(d.scale).toBe(1 / (1 - threshold / 65536))
    const xs = [1, -2, 3, 4]
    const out = await (await testSession(g)).run({ x: hostTensor('float64', [4], xs), [g.dropoutMasks[0].input.name]: hostTensor('bool', [4], [0, 1, 0, 1]) })
    expect(Array.from(out.y.data as Float64Array)).toEqual([0, -2, 0, 4])
    expect(ops.dropoutUnscaled(x, 0.5, false)).toEqual({ y: x, scale: 1 })
    const plain = new Graph('onnx-dropout')
    const z = plain.input('z', 'float32', [4])
    const u = ops.dropoutUnscaled(z, 0.5, true)
    expect(u.scale).toBe(1)
    expect(u.y.producer!.op).toBe('Dropout') // ONNX Dropout rescales itself
  })
})
