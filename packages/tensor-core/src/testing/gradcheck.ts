/**
 * Float64 finite-difference gradient check, reusable by every package that builds graphs.
 *
 * The graph under test may output any tensors y₁…yₖ. Each is reduced to a scalar by a fixed random
 * cotangent Rᵢ (a graph input of yᵢ's shape): loss = Σᵢ sum(yᵢ · Rᵢ). Then ∂loss/∂x = J(x)ᵀ·R, so every
 * element of every output contributes with its own weight and one scalar loss checks the whole Jacobian
 * along R. One Session computes loss and grad(loss, wrt); the numeric side feeds the same Session with
 * perturbed inputs and fetches only the loss.
 *
 * Error per element: |a − n| / max(floor, |a| + |n|) with a = analytic, n = numeric, floor = 1e-8 by
 * default: a relative error that stays defined where both are ~0.
 * Numeric derivative: the fourth-order central difference
 *   n = [8(L(x+h) − L(x−h)) − (L(x+2h) − L(x−2h))] / 12h,   h = 1e-3 · max(1, |x|).
 * Chosen for float64: its truncation error is O(h⁴·f⁽⁵⁾) ≈ 1e-13, and the large step keeps the rounding
 * error O(ε·Σ|terms of L| / h) near 1e-11. The plain two-point difference would need h ≈ 1e-5 and leaves
 * ~1e-9 of rounding noise, which fails small gradients (|a| ~ 1e-5, common after cancellation) at 1e-6.
 * (`stencil: 2` selects it, with h = 1e-5.) Inputs must not sit within 2h of a kink (Min, TopK order).
 */

import { grad } from '../autodiff'
import { type DType, isFloat } from '../dtype'
import { GraphError } from '../errors'
import { Graph, type Shape, Tensor } from '../graph'
import { mulberry32, normalSampler } from '../init'
import * as op from '../ops'
import { type HostTensor, hostTensor, type Provider, Session } from '../runtime'
import { testProvider } from './provider'

/** Builds the graph under test in `g` and returns its outputs (and optionally which tensors to differentiate). */
export type GradcheckBuild = (g: Graph) => Tensor | Tensor[] | { outputs: Tensor | Tensor[]; wrt?: Tensor[] }

/** Draws one element: `rand` is uniform in [0, 1), `normal` standard normal, both from the check's seed. */
export type Sampler = (rand: () => number, normal: () => number) => number

export interface GradcheckOptions {
  /** Seed of every random value (inputs, cotangents, checked coordinates). */
  seed?: number
  /** Defaults to the test provider (MOAS_TEST_PROVIDER, else 'cpu'). */
  provider?: Provider
  /** Fixed values for some inputs or params (integer inputs such as indices usually come here). */
  feeds?: Record<string, HostTensor>
  /** Per-name element sampler, e.g. positive values for log/sqrt. Default: float N(0,1), bool fair coin, uint16 uniform. */
  sample?: Record<string, Sampler>
  /** Sizes of symbolic dims (e.g. { batch: 2 }) for inputs and outputs with symbolic shapes. */
  dims?: Record<string, number>
  /** Names of the inputs/params to differentiate; default every floating-point input and param. */
  wrt?: string[]
  /** Relative finite-difference step (see the header); default 1e-3 (4-point) or 1e-5 (2-point). */
  step?: number
  /** Central-difference stencil: 4 points (fourth order, default) or 2 points (second order). */
  stencil?: 2 | 4
  /** Elements checked per tensor at most (a seeded random subset beyond that). Default: all. */
  maxPerTensor?: number
  /** Pass threshold on the error metric; the issue asks for 1e-6 in float64. */
  tolerance?: number
  /** Denominator floor of the error metric. */
  floor?: number
  /** Tensors whose gradient may legitimately be all zero (otherwise an all-zero gradient fails the check as vacuous). */
  allowZeroGrad?: string[]
}

export interface TensorCheck {
  name: string
  checked: number
  maxError: number
  /** The element with the largest error. */
  worst: { index: number; analytic: number; numeric: number }
  maxAbsGrad: number
}

export interface GradcheckReport {
  ok: boolean
  maxError: number
  tolerance: number
  checked: number
  tensors: TensorCheck[]
  /** Names of checked tensors whose analytic and numeric gradients were all zero (a check that proves nothing). */
  vacuous: string[]
  /** The graph that was checked (forward + backward), e.g. to assert on its nodes. */
  graph: Graph
  /** Values fed to the base run, and what it returned (loss and gradients). */
  feeds: Record<string, HostTensor>
  base: Record<string, HostTensor>
  /** One line per tensor, for assertion messages. */
  summary: string
}

export const LOSS_NAME = 'gradcheck.loss'
export const gradName = (name: string) => `gradcheck.grad.${name}`

export async function gradcheck(build: GradcheckBuild, opts: GradcheckOptions = {}): Promise<GradcheckReport> {
  const seed = opts.seed ?? 1
  const rand = mulberry32(seed)
  const normal = normalSampler(rand)
  const stencil = opts.stencil ?? 4
  const step = opts.step ?? (stencil === 4 ? 1e-3 : 1e-5)
  const tolerance = opts.tolerance ?? 1e-6
  const floor = opts.floor ?? 1e-8

  const g = new Graph('gradcheck')
  const built = build(g)
  const plain = Array.isArray(built) || built instanceof Tensor
  const outputs = toList(plain ? built : built.outputs)
  const wrtGiven = plain ? undefined : built.wrt
  const candidates = [...g.inputs, ...g.params.map((p) => p.tensor)]
  const wrt = wrtGiven ?? (opts.wrt ? opts.wrt.map((n) => byName(candidates, n)) : candidates.filter((t) => isFloat(t.dtype)))
  if (wrt.length === 0) throw new GraphError('gradcheck: nothing to differentiate; declare a float input or param')

  // The scalar probe: loss = Σ sum(y · R) with one random cotangent per output.
  const terms = outputs.map((y, i) => {
    if (!isFloat(y.dtype)) throw new GraphError(`gradcheck: output ${y.describe()} is not floating-point`)
    const r = g.input(`gradcheck.cotangent.${i}`, y.dtype, y.shape)
    const prod = op.mul(y, r)
    return prod.rank === 0 ? prod : op.reduceSum(prod, [...prod.shape.keys()])
  })
  const loss = g.output(LOSS_NAME, op.sum(terms))
  const grads = grad(loss, wrt)
  grads.forEach((gr, i) => g.output(gradName(wrt[i].name), gr))

  const feeds: Record<string, HostTensor> = {}
  for (const t of [...candidates, ...g.inputs.filter((t) => !candidates.includes(t))]) {
    feeds[t.name] = opts.feeds?.[t.name] ?? randomTensor(t, concrete(t.shape, opts.dims, t.name), opts.sample?.[t.name], rand, normal)
  }

  const session = await Session.create(g, { provider: opts.provider ?? testProvider() })
  try {
    const base = await session.run(feeds)
    const lossAt = async () => Number((await session.run(feeds, [LOSS_NAME]))[LOSS_NAME].data[0])
    const tensors: TensorCheck[] = []
    for (const t of wrt) {
      const data = feeds[t.name].data as Float64Array | Float32Array
      const analytic = base[gradName(t.name)].data as Float64Array | Float32Array
      if (analytic.length !== data.length)
        throw new GraphError(`gradcheck: gradient of ${t.describe()} has ${analytic.length} elements, expected ${data.length}`)
      const check: TensorCheck = { name: t.name, checked: 0, maxError: 0, worst: { index: -1, analytic: 0, numeric: 0 }, maxAbsGrad: 0 }
      for (const j of coordinates(data.length, opts.maxPerTensor, rand)) {
        const x = data[j]
        const h = step * Math.max(1, Math.abs(x))
        const at = async (d: number) => {
          data[j] = x + d
          return lossAt()
        }
        const d1 = (await at(h)) - (await at(-h))
        const numeric = stencil === 2 ? d1 / (2 * h) : (8 * d1 - ((await at(2 * h)) - (await at(-2 * h)))) / (12 * h)
        data[j] = x
        const a = analytic[j]
        const err = Math.abs(a - numeric) / Math.max(floor, Math.abs(a) + Math.abs(numeric))
        check.checked++
        check.maxAbsGrad = Math.max(check.maxAbsGrad, Math.abs(a), Math.abs(numeric))
        if (check.worst.index < 0 || err > check.maxError) {
          check.maxError = err
          check.worst = { index: j, analytic: a, numeric }
        }
      }
      tensors.push(check)
    }
    const vacuous = tensors.filter((c) => c.maxAbsGrad === 0 && !opts.allowZeroGrad?.includes(c.name)).map((c) => c.name)
    const maxError = Math.max(0, ...tensors.map((c) => c.maxError))
    const summary = tensors
      .map(
        (c) =>
          `${c.name}: max error ${c.maxError.toExponential(2)} over ${c.checked} elements (worst [${c.worst.index}] analytic ${c.worst.analytic} vs numeric ${c.worst.numeric})${c.maxAbsGrad === 0 ? ' ALL ZERO' : ''}`,
      )
      .join('\n')
    return {
      ok: maxError < tolerance && vacuous.length === 0,
      maxError,
      tolerance,
      checked: tensors.reduce((s, c) => s + c.checked, 0),
      tensors,
      vacuous,
      graph: g,
      feeds,
      base,
      summary,
    }
  } finally {
    await session.release()
  }
}

const toList = (x: Tensor | Tensor[]) => (Array.isArray(x) ? x : [x])

function byName(ts: Tensor[], name: string): Tensor {
  const t = ts.find((x) => x.name === name)
  if (!t) throw new GraphError(`gradcheck: no input or param named '${name}'; have ${ts.map((x) => x.name).join(', ')}`)
  return t
}

/** A shape with every symbolic dim ('batch', 'batch*seq') replaced by its size from `dims`. */
export function concrete(shape: Shape, dims: Record<string, number> | undefined, what: string): number[] {
  return shape.map((d) => {
    if (typeof d === 'number') return d
    return d.split('*').reduce((p, f) => {
      const v = /^\d+$/.test(f) ? Number(f) : dims?.[f]
      if (v === undefined) throw new GraphError(`gradcheck: '${what}' has symbolic dim '${d}'; give the size of '${f}' in opts.dims`)
      return p * v
    }, 1)
  })
}

function randomTensor(t: Tensor, shape: number[], sampler: Sampler | undefined, rand: () => number, normal: () => number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1)
  const draw = sampler ?? defaultSampler(t.dtype, t.name)
  const values = Array.from({ length: n }, () => draw(rand, normal))
  return hostTensor(t.dtype, shape, values)
}

function defaultSampler(dtype: DType, name: string): Sampler {
  if (isFloat(dtype)) return (_r, normal) => normal()
  if (dtype === 'bool') return (r) => (r() < 0.5 ? 0 : 1)
  if (dtype === 'uint16') return (r) => Math.floor(r() * 65536)
  throw new GraphError(`gradcheck: input '${name}' is ${dtype}; give its values in opts.feeds or a sampler in opts.sample`)
}

/** Indices to check: all of them, or `max` distinct ones drawn with the check's seed. */
function coordinates(n: number, max: number | undefined, rand: () => number): number[] {
  const all = [...Array(n).keys()]
  if (max === undefined || n <= max) return all
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[all[i], all[j]] = [all[j], all[i]]
  }
  return all.slice(0, max).sort((a, b) => a - b)
}
