// Every op with a gradient rule in gradients.ts, checked by float64 central differences (testing/gradcheck)
// on seeded random inputs and random shapes, broadcasting included. Relative error must stay below 1e-6.
// MOAS_GRADCHECK_SEED picks another draw of shapes and values (default 1).
import { describe, expect, it } from 'vitest'
import { GRADIENTS } from './gradients'
import type { Graph, Tensor } from './graph'
import { mulberry32 } from './init'
import * as ops from './ops'
import type { HostTensor } from './runtime'
import { hostTensor } from './runtime'
import { type GradcheckBuild, type GradcheckOptions, gradcheck } from './testing/gradcheck'

const SEED = Number(process.env.MOAS_GRADCHECK_SEED ?? 1)
const rand = mulberry32(SEED * 7919)
/** A random size in [lo, hi]. */
const dim = (lo = 2, hi = 4) => lo + Math.floor(rand() * (hi - lo + 1))
const f64 = (g: Graph, name: string, shape: number[]) => g.input(name, 'float64', shape)
const param = (g: Graph, name: string, shape: number[]) => g.param(name, shape, { init: { kind: 'zeros' }, dtype: 'float64' })
const positive = { sample: (r: () => number) => 0.5 + 2 * r() }
const awayFromZero = (r: () => number) => (r() < 0.5 ? -1 : 1) * (0.5 + r())
const ints = (shape: number[], values: number[]): HostTensor => hostTensor('int64', shape, values)
const randInts = (n: number, max: number) => Array.from({ length: n }, () => Math.floor(rand() * max))
/** n distinct values in [0, max), in random order. */
const distinct = (n: number, max: number) => {
  const all = [...Array(max).keys()]
  for (let i = max - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    ;[all[i], all[j]] = [all[j], all[i]]
  }
  return all.slice(0, n)
}

const fill = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i))
const geluSample = (r: () => number) => {
  for (;;) {
    const x = -3 + 6 * r()
    if (Math.abs(x + 0.752) > 0.15) return x
  }
}

interface Case {
  name: string
  /** ONNX op types whose rules this case exercises. */
  covers: string[]
  build: GradcheckBuild
  opts?: GradcheckOptions
}

function cases(): Case[] {
  const [A, B, C] = [dim(), dim(), dim()]
  const M = dim(2, 5)
  const out: Case[] = [
    // Elementwise binaries with broadcasting [A,1,C] vs [B,C]: the gradients are summed back once in autodiff.
    { name: 'Add broadcast', covers: ['Add'], build: (g) => ops.add(f64(g, 'a', [A, 1, C]), f64(g, 'b', [B, C])) },
    { name: 'Sub broadcast', covers: ['Sub'], build: (g) => ops.sub(f64(g, 'a', [B, C]), f64(g, 'b', [A, 1, C])) },
    { name: 'Mul broadcast', covers: ['Mul'], build: (g) => ops.mul(f64(g, 'a', [A, 1, C]), f64(g, 'b', [B, 1])) },
    { name: 'Div broadcast', covers: ['Div'], build: (g) => ops.div(f64(g, 'a', [A, 1, C]), f64(g, 'b', [B, C])), opts: { sample: { b: awayFromZero } } },
    {
      name: 'Pow broadcast (base and exponent)',
      covers: ['Pow'],
      build: (g) => ops.pow(f64(g, 'a', [A, 1, C]), f64(g, 'b', [B, C])),
      opts: { sample: { a: positive.sample } },
    },
    { name: 'Pow with a constant exponent', covers: ['Pow'], build: (g) => ops.pow(f64(g, 'a', [A, C]), 3) },
    // Min: a on even integers, b on odd ones plus < 0.4, so no pair is within a finite-difference step of a
    // tie; the first elements are set so that each side wins somewhere.
    {
      name: 'Min broadcast',
      covers: ['Min'],
      build: (g) => ops.minimum(f64(g, 'a', [A, 1, C]), f64(g, 'b', [B, C])),
      opts: {
        feeds: {
          a: hostTensor(
            'float64',
            [A, 1, C],
            fill(A * C, (i) => (i === 0 ? 4 : i === 1 ? -4 : 2 * Math.floor(rand() * 5) - 4)),
          ),
          b: hostTensor(
            'float64',
            [B, C],
            fill(B * C, (i) => (i === 0 ? -3 : i === 1 ? 3 : 2 * Math.floor(rand() * 5) - 3) + 0.4 * rand()),
          ),
        },
      },
    },
    {
      name: 'Where broadcast',
      covers: ['Where'],
      build: (g) => ops.where(g.input('c', 'bool', [A, 1, C]), f64(g, 'a', [B, C]), f64(g, 'b', [A, B, 1])),
      opts: {
        feeds: {
          c: hostTensor(
            'bool',
            [A, 1, C],
            fill(A * C, (i) => (i < 2 ? i : rand() < 0.5 ? 1 : 0)),
          ),
        },
      },
    },
    { name: 'Sum of three, broadcast', covers: ['Sum'], build: (g) => ops.sum([f64(g, 'a', [A, B, C]), f64(g, 'b', [B, 1]), f64(g, 'c', [C])]) },
    // Unary
    { name: 'Neg', covers: ['Neg'], build: (g) => ops.neg(f64(g, 'x', [A, B])) },
    { name: 'Sqrt', covers: ['Sqrt'], build: (g) => ops.sqrt(f64(g, 'x', [A, B])), opts: { sample: { x: positive.sample } } },
    { name: 'Exp', covers: ['Exp'], build: (g) => ops.exp(f64(g, 'x', [A, B])) },
    { name: 'Log', covers: ['Log'], build: (g) => ops.log(f64(g, 'x', [A, B])), opts: { sample: { x: positive.sample } } },
    { name: 'Tanh', covers: ['Tanh'], build: (g) => ops.tanh(f64(g, 'x', [A, B])) },
    { name: 'Identity', covers: ['Identity'], build: (g) => ops.identity(f64(g, 'x', [A, B])) },
    // A float64 → float64 Cast node (ops.cast elides it) checks the rule; the float32 round trip is below.
    {
      name: 'Cast',
      covers: ['Cast'],
      build: (g) => g.addNode('Cast', [f64(g, 'x', [A, B])], [{ dtype: 'float64', shape: [A, B] }], { to: { kind: 'int', value: 11 } })[0],
    },
    // ONNX Runtime's float64 Gelu(tanh) kernel deviates from the formula by up to ~3e-8 relative for |x| < 3
    // (7e-7 at x = −5; measured). That is far below float32 but shows in a 1e-6 finite-difference check
    // wherever the derivative is tiny: its root near x = −0.752 and the far negative tail. So x is drawn from
    // [−3, 3] minus ±0.15 around the root; the rule is compared with the exact derivative everywhere below.
    { name: 'Gelu tanh', covers: ['Gelu'], build: (g) => ops.gelu(f64(g, 'x', [A, B, C]), 'tanh'), opts: { sample: { x: geluSample } } },
    // MatMul: batched with broadcast batch dims, 2-D right operand (folded dW), 2-D left operand, linear (x·Wᵀ).
    { name: 'MatMul batched, broadcast batch', covers: ['MatMul'], build: (g) => ops.matmul(f64(g, 'a', [A, 1, M, C]), f64(g, 'b', [B, C, 3])) },
    { name: 'MatMul 2-D right operand', covers: ['MatMul'], build: (g) => ops.matmul(f64(g, 'a', [A, M, C]), f64(g, 'b', [C, B])) },
    { name: 'MatMul 2-D left operand', covers: ['MatMul'], build: (g) => ops.matmul(f64(g, 'a', [M, C]), f64(g, 'b', [A, C, B])) },
    {
      name: 'linear (MatMul of Transpose) with bias',
      covers: ['MatMul', 'Transpose', 'Add'],
      build: (g) => ops.linear(f64(g, 'x', [A, M, C]), param(g, 'w', [B, C]), param(g, 'bias', [B])),
    },
    // Shape ops
    { name: 'Reshape', covers: ['Reshape'], build: (g) => ops.reshape(f64(g, 'x', [A, B, C]), [B, A * C]) },
    { name: 'Transpose', covers: ['Transpose'], build: (g) => ops.transpose(f64(g, 'x', [A, B, C]), [2, 0, 1]) },
    { name: 'Unsqueeze', covers: ['Unsqueeze'], build: (g) => ops.unsqueeze(f64(g, 'x', [A, B]), [0, -1]) },
    { name: 'Squeeze', covers: ['Squeeze'], build: (g) => ops.squeeze(f64(g, 'x', [A, 1, B, 1]), [1, -1]) },
    { name: 'Expand', covers: ['Expand'], build: (g) => ops.expand(f64(g, 'x', [A, 1]), [B, A, C]) },
    { name: 'Concat', covers: ['Concat'], build: (g) => ops.concat([f64(g, 'a', [A, B]), f64(g, 'b', [A, C]), f64(g, 'c', [A, 1])], -1) },
    { name: 'Split (all outputs)', covers: ['Split'], build: (g) => ops.split(f64(g, 'x', [A, B + C]), [B, C], 1) },
    { name: 'Split (one output used)', covers: ['Split'], build: (g) => ops.split(f64(g, 'x', [B + C, A]), [B, C], 0)[1] },
    {
      name: 'Slice (negative start, negative axis)',
      covers: ['Slice'],
      build: (g) => ops.slice(f64(g, 'x', [A, B + 2, C + 1]), [1, -C], [B + 1, 1000], [1, -1]),
    },
    { name: 'Pad', covers: ['Pad'], build: (g) => ops.pad(f64(g, 'x', [A, B]), [1, 0, 2, 1], 0.5) },
    { name: 'Trilu lower, k=0', covers: ['Trilu'], build: (g) => ops.trilu(f64(g, 'x', [A, M, M]), false) },
    { name: 'Trilu upper, k=1', covers: ['Trilu'], build: (g) => ops.trilu(f64(g, 'x', [M, M + 1]), true, 1) },
    // Reductions, both keepdims
    { name: 'ReduceSum keepdims', covers: ['ReduceSum'], build: (g) => ops.reduceSum(f64(g, 'x', [A, B, C]), [0, 2], true) },
    { name: 'ReduceSum no keepdims', covers: ['ReduceSum'], build: (g) => ops.reduceSum(f64(g, 'x', [A, B, C]), [-1], false) },
    { name: 'ReduceMean keepdims', covers: ['ReduceMean'], build: (g) => ops.reduceMean(f64(g, 'x', [A, B, C]), [1], true) },
    { name: 'ReduceMean no keepdims', covers: ['ReduceMean'], build: (g) => ops.reduceMean(f64(g, 'x', [A, B, C]), [0, 1], false) },
    // Normalization and losses
    { name: 'Softmax (last axis)', covers: ['Softmax'], build: (g) => ops.softmax(f64(g, 'x', [A, B, C])) },
    { name: 'Softmax (middle axis)', covers: ['Softmax'], build: (g) => ops.softmax(f64(g, 'x', [A, B, C]), 1) },
    { name: 'LogSoftmax', covers: ['LogSoftmax'], build: (g) => ops.logSoftmax(f64(g, 'x', [A, B, C]), -1) },
    {
      name: 'LayerNormalization with bias',
      covers: ['LayerNormalization'],
      build: (g) => ops.layerNorm(f64(g, 'x', [A, B, C + 2]), param(g, 'gamma', [C + 2]), param(g, 'beta', [C + 2])),
    },
    {
      name: 'LayerNormalization without bias',
      covers: ['LayerNormalization'],
      build: (g) => ops.layerNorm(f64(g, 'x', [A, C + 2]), param(g, 'gamma', [C + 2]), null, 1e-3),
    },
    {
      name: 'SoftmaxCrossEntropyLoss',
      covers: ['SoftmaxCrossEntropyLoss'],
      build: (g) => ops.crossEntropy(f64(g, 'logits', [A * B, C + 2]), g.input('labels', 'int64', [A * B])),
      opts: { feeds: { labels: ints([A * B], randInts(A * B, C + 2)) } },
    },
  ]

  // Indexing. Embedding lookup with repeated ids: the scatter-add must accumulate them.
  const V = dim(4, 6)
  const ids = [...randInts(A * B - 1, V), 0, 0].slice(0, A * B)
  out.push({
    name: 'Gather (embedding, repeated ids)',
    covers: ['Gather'],
    build: (g) => ops.gather(param(g, 'emb', [V, C]), g.input('ids', 'int64', [A, B])),
    opts: { feeds: { ids: ints([A, B], ids) }, allowZeroGrad: [] },
  })
  out.push({
    name: 'GatherElements axis 1',
    covers: ['GatherElements'],
    build: (g) => ops.gatherElements(f64(g, 'x', [A, B]), g.input('i', 'int64', [A, C]), 1),
    opts: { feeds: { i: ints([A, C], randInts(A * C, B)) } },
  })
  out.push({
    name: 'GatherND',
    covers: ['GatherND'],
    build: (g) => ops.gatherND(f64(g, 'x', [A, B, C]), g.input('i', 'int64', [3, 2])),
    opts: { feeds: { i: ints([3, 2], [0, 0, A - 1, B - 1, 0, 0]) } },
  })
  // ScatterElements 'none' needs distinct targets per column (duplicates are undefined in ONNX).
  const rowsPerCol = Array.from({ length: C }, () => distinct(2, A + 1))
  const scIdx = [0, 1].flatMap((r) => rowsPerCol.map((col) => col[r]))
  out.push({
    name: 'ScatterElements none',
    covers: ['ScatterElements'],
    build: (g) => ops.scatterElements(f64(g, 'data', [A + 1, C]), g.input('i', 'int64', [2, C]), f64(g, 'u', [2, C]), 0),
    opts: { feeds: { i: ints([2, C], scIdx) } },
  })
  out.push({
    name: 'ScatterElements add (repeated targets)',
    covers: ['ScatterElements'],
    build: (g) => ops.scatterElements(f64(g, 'data', [A, C]), g.input('i', 'int64', [A, 3]), f64(g, 'u', [A, 3]), 1, 'add'),
    opts: { feeds: { i: ints([A, 3], randInts(3 * A, 2)) } },
  })
  const ndRows = distinct(2, A + 1)
  out.push({
    name: 'ScatterND none',
    covers: ['ScatterND'],
    build: (g) => ops.scatterND(f64(g, 'data', [A + 1, C]), g.input('i', 'int64', [2, 1]), f64(g, 'u', [2, C])),
    opts: { feeds: { i: ints([2, 1], ndRows) } },
  })
  out.push({
    name: 'ScatterND add (repeated targets)',
    covers: ['ScatterND'],
    build: (g) => ops.scatterND(f64(g, 'data', [A, C]), g.input('i', 'int64', [3, 1]), f64(g, 'u', [3, C]), 'add'),
    opts: { feeds: { i: ints([3, 1], [0, A - 1, 0]) } },
  })
  // TopK: gradient through the values; the int64 indices output is not differentiable and gets nothing.
  // Values at least 0.5 apart, so no finite-difference step reorders them.
  const spread = (n: number) => distinct(n, n).map((v) => v + 0.5 * rand())
  out.push({
    name: 'TopK values (largest)',
    covers: ['TopK'],
    build: (g) => ops.topk(f64(g, 'x', [A, C + 3]), 2)[0],
    opts: { feeds: { x: hostTensor('float64', [A, C + 3], spread(A * (C + 3))) } },
  })
  out.push({
    name: 'TopK values (smallest, axis 0)',
    covers: ['TopK'],
    build: (g) => ops.topk(f64(g, 'x', [A + 2, C]), 2, 0, false)[0],
    opts: { feeds: { x: hostTensor('float64', [A + 2, C], spread((A + 2) * C)) } },
  })
  // Dropout with caller-fed noise: the mask is a fixed input, so the op is differentiable for FD.
  out.push({
    name: 'Dropout (noise-input mode)',
    covers: ['Mul', 'Cast'],
    build: (g) => {
      g.dropoutNoise = true
      return ops.dropout(f64(g, 'x', [A, B, C]), 0.4, true)
    },
  })
  return out
}

describe(`gradient rules, float64 finite differences (seed ${SEED})`, () => {
  const all = cases()
  for (const c of all) {
    it(c.name, async () => {
      const r = await gradcheck(c.build, { seed: SEED, ...c.opts })
      expect(r.vacuous, 'every checked gradient has a non-zero element').toEqual([])
      expect(r.maxError, r.summary).toBeLessThan(1e-6)
      const ops_ = new Set(r.graph.nodes.map((n) => n.op))
      for (const op of c.covers) expect(ops_, `graph contains ${op}`).toContain(op)
    })
  }

  it('covers every differentiable rule in the table', () => {
    const covered = new Set([...all.flatMap((c) => c.covers), 'Erf', 'Gelu', 'Dropout'])
    const differentiable = Object.keys(GRADIENTS).filter((op) => !['Shape', 'Range', 'ConstantOfShape', 'Equal', 'Less', 'Greater', 'OneHot'].includes(op))
    expect(differentiable.filter((op) => !covered.has(op))).toEqual([])
  })
})

// Erf has no float64 kernel in ONNX Runtime, so exact GELU and Erf are checked in float32 against their
// analytic derivatives computed here in float64 (tolerance: float32 rounding of the graph's arithmetic).
describe('Erf and exact Gelu in float32, against analytic derivatives', () => {
  const erf = (x: number) => {
    // Abramowitz–Stegun 7.1.26 is only 1e-7; use the series / continued fraction for float64 accuracy.
    const t = Math.abs(x)
    if (t < 3) {
      let sum = t
      let term = t
      for (let n = 1; n < 100; n++) {
        term *= (-t * t) / n
        const add = term / (2 * n + 1)
        sum += add
        if (Math.abs(add) < 1e-17 * Math.abs(sum)) break
      }
      return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum
    }
    // erfc continued fraction for large |x|
    let f = 0
    for (let n = 60; n >= 1; n--) f = n / 2 / (t + f)
    return Math.sign(x) * (1 - Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f))
  }
  const dErf = (x: number) => (2 / Math.sqrt(Math.PI)) * Math.exp(-x * x)
  const dGelu = (x: number) => 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI)

  for (const [name, f, df] of [
    ['Erf', (x: Tensor) => ops.erf(x), dErf],
    ['Gelu (exact)', (x: Tensor) => ops.gelu(x), dGelu],
  ] as const) {
    it(name, async () => {
      const n = 64
      // loss = Σ f(x)·r; dL/dx = f'(x)·r
      const r = await gradcheck((g) => f(g.input('x', 'float32', [n])), { seed: SEED, step: 1e-2, tolerance: Infinity, maxPerTensor: 0 })
      const x = r.feeds.x.data as Float32Array
      const rv = r.feeds['gradcheck.cotangent.0'].data as Float32Array
      const got = r.base['gradcheck.grad.x'].data as Float32Array
      expect(r.base['gradcheck.grad.x'].dtype).toBe('float32')
      // The float32 graph evaluates f'(x) from a handful of float32 ops whose terms are O(1), so its absolute
      // error is a few float32 ulps (ε = 6e-8) of 1: require |got − want| ≤ 1e-6·|r| element by element.
      // (Relative error is the wrong yardstick here: GELU's derivative crosses zero near x = −0.75.)
      let maxErr = 0
      for (let i = 0; i < n; i++) maxErr = Math.max(maxErr, Math.abs(got[i] - df(x[i]) * rv[i]) / Math.abs(rv[i]))
      expect(maxErr).toBeLessThan(1e-6)
      expect(maxErr).toBeGreaterThan(0) // it really is float32 arithmetic being compared
    })
  }

  it('Gelu tanh in float64 equals its exact derivative on [−6, 6], root and tails included', async () => {
    const n = 97
    const xs = fill(n, (i) => -6 + (12 * i) / (n - 1))
    const r = await gradcheck((g) => ops.gelu(g.input('x', 'float64', [n]), 'tanh'), {
      seed: SEED,
      maxPerTensor: 0,
      tolerance: Infinity,
      feeds: { x: hostTensor('float64', [n], xs) },
    })
    const k = Math.sqrt(2 / Math.PI)
    const dGeluTanh = (x: number) => {
      const t = Math.tanh(k * (x + 0.044715 * x ** 3))
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x)
    }
    const rv = r.feeds['gradcheck.cotangent.0'].data as Float64Array
    const got = r.base['gradcheck.grad.x'].data as Float64Array
    for (let i = 0; i < n; i++) expect(Math.abs(got[i] - dGeluTanh(xs[i]) * rv[i])).toBeLessThan(1e-14 * Math.abs(rv[i]))
  })

  it('the erf used as reference is accurate (spot values)', () => {
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 15)
    expect(erf(-1.5)).toBeCloseTo(-0.9661051464753108, 15)
    expect(erf(3.5)).toBeCloseTo(0.9999992569016276, 14)
  })
})
