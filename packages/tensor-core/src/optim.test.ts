// In-graph AdamW against a plain-TypeScript AdamW with PyTorch's semantics (torch.optim.AdamW: decoupled
// weight decay p ← p·(1 − lr·wd), bias-corrected moments, eps added after the square root; clipping as
// torch.nn.utils.clip_grad_norm_), fed the gradients the same graph computed.
import { describe, expect, it } from 'vitest'
import { grad } from './autodiff'
import type { DType } from './dtype'
import { Graph, type ParamInfo } from './graph'
import { mulberry32, normalSampler } from './init'
import * as ops from './ops'
import { type AdamWOptions, adamw, adamwScalars, momentNames, nextName } from './optim'
import { type HostTensor, hostTensor } from './runtime'
import { testSession } from './testing/provider'

interface TsState {
  p: Float64Array
  m: Float64Array
  v: Float64Array
}

/** One torch.optim.AdamW step for one parameter, in float64. */
function tsAdamW(s: TsState, g: ArrayLike<number>, t: number, lr: number, o: Required<Omit<AdamWOptions, 'clipNorm'>>, decay: boolean): void {
  const bc1 = 1 - o.beta1 ** t
  const bc2 = 1 - o.beta2 ** t
  for (let i = 0; i < s.p.length; i++) {
    if (decay) s.p[i] *= 1 - lr * o.weightDecay
    s.m[i] = o.beta1 * s.m[i] + (1 - o.beta1) * g[i]
    s.v[i] = o.beta2 * s.v[i] + (1 - o.beta2) * g[i] * g[i]
    const denom = Math.sqrt(s.v[i]) / Math.sqrt(bc2) + o.eps
    s.p[i] -= (lr / bc1) * (s.m[i] / denom)
  }
}

/** torch.nn.utils.clip_grad_norm_: scale every gradient by min(1, maxNorm / (‖g‖ + 1e-6)). */
function tsClip(grads: Float64Array[], maxNorm: number): { norm: number; clipped: ArrayLike<number>[] } {
  const norm = Math.sqrt(grads.reduce((s, g) => s + g.reduce((a, b) => a + b * b, 0), 0))
  const scale = Math.min(1, maxNorm / (norm + 1e-6))
  return { norm, clipped: grads.map((g) => g.map((x) => x * scale)) }
}

/**
 * A small graph with four parameters: decay follows the default (rank ≥ 2 on, vectors off) for w1 and b,
 * and is set explicitly the other way round for w2 (off) and s (on).
 */
function build(dtype: DType, opts: AdamWOptions) {
  const g = new Graph('adamw')
  const x = g.input('x', dtype, [5, 4])
  const w1 = g.param('w1', [3, 4], { init: { kind: 'normal', std: 0.5 }, dtype })
  const b = g.param('b', [3], { init: { kind: 'normal', std: 0.5 }, dtype })
  const w2 = g.param('w2', [2, 3], { init: { kind: 'normal', std: 0.5 }, dtype, decay: false })
  const s = g.param('s', [2], { init: { kind: 'normal', std: 0.5 }, dtype, decay: true })
  const y = ops.mul(ops.linear(ops.tanh(ops.linear(x, w1, b)), w2), s)
  const loss = g.output('loss', ops.reduceMean(ops.mul(y, y), [0, 1]))
  const grads = grad(
    loss,
    g.params.map((p) => p.tensor),
  )
  grads.forEach((gr, i) => g.output(`grad.${g.params[i].tensor.name}`, gr))
  const opt = adamw(g, g.params, grads, opts)
  return { g, opt }
}

const rand = (n: number, seed: number, scale = 1) => {
  const normal = normalSampler(mulberry32(seed))
  return Float64Array.from({ length: n }, () => normal() * scale)
}

/** `mutate` perturbs the TS side on purpose, to show the comparison notices such a difference. */
async function compare(dtype: DType, opts: AdamWOptions, steps: number, mutate: { decayAll?: boolean; ignoreClip?: boolean } = {}) {
  const o = { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, ...opts }
  const { g } = build(dtype, o)
  const session = await testSession(g)
  const cast = (a: Float64Array) => (dtype === 'float64' ? Float64Array.from(a) : Float32Array.from(a))
  const params = g.params
  // Non-zero starting moments (as after earlier steps) so every term of the update is exercised.
  const ts = new Map<string, TsState>(
    params.map((p, i) => {
      const n = p.tensor.shape.reduce((a: number, b) => a * (b as number), 1)
      return [p.tensor.name, { p: rand(n, 10 + i, 0.5), m: rand(n, 20 + i, 0.01), v: rand(n, 30 + i, 0.01).map((z) => z * z) }]
    }),
  )
  // Round the starting state to the graph's dtype so both sides start from identical values.
  for (const s of ts.values()) for (const a of [s.p, s.m, s.v]) a.set(cast(a))
  const x = hostTensor(dtype, [5, 4], cast(rand(20, 99)))
  let maxErr = 0
  let minNorm = Infinity
  const lr = 0.05 // large, so decay and update are far above rounding
  for (let t = 1; t <= steps; t++) {
    const sc = adamwScalars(t, lr, o)
    const feeds: Record<string, HostTensor> = {
      x,
      lr: hostTensor(dtype, [], [sc.lr]),
      bias_correction1: hostTensor(dtype, [], [sc.biasCorrection1]),
      bias_correction2: hostTensor(dtype, [], [sc.biasCorrection2]),
    }
    for (const p of params) {
      const s = ts.get(p.tensor.name)!
      const names = momentNames(p.tensor.name)
      const shape = p.tensor.shape as number[]
      feeds[p.tensor.name] = hostTensor(dtype, shape, cast(s.p))
      feeds[names.m] = hostTensor(dtype, shape, cast(s.m))
      feeds[names.v] = hostTensor(dtype, shape, cast(s.v))
    }
    const out = await session.run(feeds)
    const grads = params.map((p) => Float64Array.from(out[`grad.${p.tensor.name}`].data as Float64Array))
    let used: ArrayLike<number>[] = grads
    if (o.clipNorm !== undefined) {
      const c = tsClip(grads, o.clipNorm)
      expect(Math.abs(Number(out.grad_norm.data[0]) - c.norm)).toBeLessThan(1e-6 * c.norm)
      minNorm = Math.min(minNorm, c.norm)
      if (!mutate.ignoreClip) used = c.clipped
    }
    params.forEach((p: ParamInfo, i) => tsAdamW(ts.get(p.tensor.name)!, used[i], t, lr, o, mutate.decayAll || p.decay))
    for (const p of params) {
      const s = ts.get(p.tensor.name)!
      const names = momentNames(p.tensor.name)
      for (const [want, got] of [
        [s.p, out[nextName(p.tensor.name)]],
        [s.m, out[nextName(names.m)]],
        [s.v, out[nextName(names.v)]],
      ] as const) {
        const gd = got.data as Float64Array
        for (let i = 0; i < want.length; i++) maxErr = Math.max(maxErr, Math.abs(gd[i] - want[i]))
        // Continue from the graph's values (as training does), so float32 rounding does not accumulate.
        want.set(gd)
      }
    }
  }
  return { maxErr, minNorm }
}

describe('in-graph AdamW equals a TypeScript AdamW (PyTorch semantics)', () => {
  it('decays exactly the parameters marked for decay', () => {
    const { g } = build('float64', {})
    expect(g.params.map((p) => [p.tensor.name, p.decay])).toEqual([
      ['w1', true],
      ['b', false],
      ['w2', false],
      ['s', true],
    ])
  })

  for (const dtype of ['float64', 'float32'] as const) {
    // float64 agrees to rounding (1e-12); float32 to a few float32 ulps of O(1) values, well inside 1e-6.
    const tol = dtype === 'float64' ? 1e-12 : 1e-6
    it(`${dtype}: three steps with weight decay (on for w1, s; off for b, w2)`, async () => {
      expect((await compare(dtype, { weightDecay: 0.1 }, 3)).maxErr).toBeLessThan(tol)
    })
    it(`${dtype}: weight decay 0 everywhere`, async () => {
      expect((await compare(dtype, { weightDecay: 0 }, 2)).maxErr).toBeLessThan(tol)
    })
    it(`${dtype}: clipping by global norm (active: max norm below the gradient norm)`, async () => {
      expect((await compare(dtype, { clipNorm: 0.05 }, 3)).maxErr).toBeLessThan(tol)
    })
    it(`${dtype}: clipping by global norm (inactive: max norm above the gradient norm)`, async () => {
      expect((await compare(dtype, { clipNorm: 1e3 }, 2)).maxErr).toBeLessThan(tol)
    })
  }

  it('the comparison notices a wrong decay flag or a missing clip', async () => {
    expect((await compare('float64', { weightDecay: 0.1 }, 1, { decayAll: true })).maxErr).toBeGreaterThan(1e-4)
    const clipped = await compare('float64', { clipNorm: 0.05 }, 1, { ignoreClip: true })
    expect(clipped.minNorm).toBeGreaterThan(0.05) // the clip was active...
    expect(clipped.maxErr).toBeGreaterThan(1e-4) // ...and skipping it shows
  })
})
