import { Graph, grad, type HostTensor, ops, Session } from '@moas/tensor-core'
import { gradcheck, randHost } from '@moas/tensor-core/testing'
import { describe, expect, it } from 'vitest'
import { linearRouter, schemeRouter } from './routers'

/** erf to ~1e-15: Maclaurin series for |x| < 3, Laplace continued fraction for erfc beyond. */
function erf(x: number): number {
  const ax = Math.abs(x)
  if (ax < 3) {
    let term = x,
      sum = x
    for (let n = 1; n < 200 && Math.abs(term) > 1e-18; n++) {
      term *= (-x * x) / n
      sum += term / (2 * n + 1)
    }
    return (2 / Math.sqrt(Math.PI)) * sum
  }
  let f = 0
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f)
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f)
  return Math.sign(x) * (1 - erfc)
}
const gelu = (h: number) => 0.5 * h * (1 + erf(h / Math.SQRT2))
const geluGrad = (h: number) => 0.5 * (1 + erf(h / Math.SQRT2)) + (h * Math.exp(-0.5 * h * h)) / Math.sqrt(2 * Math.PI)

/** Rows of x [N, inp] times W [out, inp] transposed. */
function linearRef(x: Float64Array, N: number, w: ArrayLike<number>, out: number, inp: number): Float64Array {
  const y = new Float64Array(N * out)
  for (let i = 0; i < N; i++)
    for (let o = 0; o < out; o++) {
      let s = 0
      for (let c = 0; c < inp; c++) s += x[i * inp + c] * w[o * inp + c]
      y[i * out + o] = s
    }
  return y
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length)
  let scale = 0,
    err = 0
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]))
    err = Math.max(err, Math.abs(got[i] - want[i]))
  }
  return err / scale
}

describe('schemeRouter', () => {
  const cfg = { nEmbd: 12, hidden: 3, nOut: 3 }

  it('names its layers like nn.Sequential (0 and 2), no biases, N(0, 0.02)', () => {
    const g = new Graph('router')
    const y = schemeRouter(g.input('x', 'float32', ['batch', 'seq', 12]), cfg, 'transformer.h.0.attn.router.')
    expect(y.shape).toEqual(['batch', 'seq', 3])
    expect(g.params.map((p) => [p.tensor.name, p.tensor.shape, p.init])).toEqual([
      ['transformer.h.0.attn.router.0.weight', [3, 12], { kind: 'normal', std: 0.02 }],
      ['transformer.h.0.attn.router.2.weight', [3, 3], { kind: 'normal', std: 0.02 }],
    ])
  })

  it('computes Linear → exact GELU → Linear, with gradients matching an analytic float64 reference (float32 run)', async () => {
    // ONNX Runtime has no float64 Erf kernel, so the exact GELU cannot be finite-differenced in float64:
    // compare the float32 graph's forward and backward with the closed-form gradients computed in float64.
    const [B, T, C, Hd, S] = [2, 5, cfg.nEmbd, cfg.hidden, cfg.nOut]
    const N = B * T
    const g = new Graph('router-grad')
    const x = g.input('x', 'float32', [B, T, C])
    const logits = schemeRouter(x, cfg, 'r.')
    const loss = ops.reduceSum(ops.mul(logits, g.input('probe', 'float32', [B, T, S])), [0, 1, 2])
    const [w0, w2] = g.params.map((p) => p.tensor)
    const grads = grad(loss, [x, w0, w2])
    g.output('logits', logits)
    ;['dx', 'dw0', 'dw2'].forEach((n, i) => g.output(n, grads[i]))
    const feeds: Record<string, HostTensor> = {
      x: randHost('float32', [B, T, C], 1),
      probe: randHost('float32', [B, T, S], 2),
      'r.0.weight': randHost('float32', [Hd, C], 3, 0.5),
      'r.2.weight': randHost('float32', [S, Hd], 4, 0.5),
    }
    const out = await (await Session.create(g)).run(feeds)
    const X = Float64Array.from(feeds.x.data as Float32Array)
    const W0 = feeds['r.0.weight'].data as Float32Array
    const W2 = feeds['r.2.weight'].data as Float32Array
    const P = feeds.probe.data as Float32Array
    const h = linearRef(X, N, W0, Hd, C)
    const a = h.map(gelu)
    expect(relErr(out.logits.data as Float32Array, linearRef(a, N, W2, S, Hd))).toBeLessThan(1e-6)
    // dlogits = P; dW2 = Pᵀa; da = P·W2; dh = da ⊙ gelu'(h); dW0 = dhᵀx; dx = dh·W0
    const dW2 = new Float64Array(S * Hd),
      dh = new Float64Array(N * Hd),
      dW0 = new Float64Array(Hd * C),
      dx = new Float64Array(N * C)
    for (let n = 0; n < N; n++) {
      for (let s = 0; s < S; s++) for (let j = 0; j < Hd; j++) dW2[s * Hd + j] += P[n * S + s] * a[n * Hd + j]
      for (let j = 0; j < Hd; j++) {
        let da = 0
        for (let s = 0; s < S; s++) da += P[n * S + s] * W2[s * Hd + j]
        dh[n * Hd + j] = da * geluGrad(h[n * Hd + j])
      }
      for (let j = 0; j < Hd; j++)
        for (let c = 0; c < C; c++) {
          dW0[j * C + c] += dh[n * Hd + j] * X[n * C + c]
          dx[n * C + c] += dh[n * Hd + j] * W0[j * C + c]
        }
    }
    expect(relErr(out.dw2.data as Float32Array, dW2)).toBeLessThan(1e-5)
    expect(relErr(out.dw0.data as Float32Array, dW0)).toBeLessThan(1e-5)
    expect(relErr(out.dx.data as Float32Array, dx)).toBeLessThan(1e-5)
  })

  it('rejects a wrong input width and bad sizes', () => {
    const g = new Graph('bad')
    const x = g.input('x', 'float32', [2, 12])
    expect(() => schemeRouter(x, { ...cfg, nEmbd: 16 }, 'r.')).toThrow(/expects x \[\.\.\., 16\]/)
    expect(() => schemeRouter(x, { ...cfg, hidden: 0 }, 'r.')).toThrow(/hidden must be a positive integer/)
  })
})

describe('linearRouter', () => {
  it('is one Linear [nOut, C] (+ bias) named under the prefix, with FD-checked gradients', async () => {
    const g0 = new Graph('names')
    linearRouter(g0.input('x', 'float32', [3, 8]), { nEmbd: 8, nOut: 6, bias: true }, 'attn.router')
    expect(g0.params.map((p) => [p.tensor.name, p.tensor.shape, p.init.kind])).toEqual([
      ['attn.router.weight', [6, 8], 'normal'],
      ['attn.router.bias', [6], 'zeros'],
    ])
    const res = await gradcheck((g) => linearRouter(g.input('x', 'float64', [2, 3, 8]), { nEmbd: 8, nOut: 6, bias: true }, 'r'))
    expect(res.ok, res.summary).toBe(true)
    expect(res.tensors.map((t) => [t.name, t.checked])).toEqual([
      ['x', 48],
      ['r.weight', 48],
      ['r.bias', 6],
    ])
  })
})
