/**
 * Every gradient rule, one entry per ONNX op type. A rule maps output gradients to input gradients using
 * standard ONNX ops only. Rules may return gradients in the broadcast (output) shape: autodiff.ts undoes
 * broadcasting in one place. Rules reuse forward values (softmax output, LayerNorm mean / inverse std,
 * the dropout mask, cross-entropy log-probabilities) instead of recomputing them.
 */
import { isFloat } from './dtype'
import { GraphError } from './errors'
import { mulDims, type Node, type Tensor } from './graph'
import * as op from './ops'

export interface GradContext {
  node: Node
  /** Forward inputs (null = omitted optional input). */
  x: readonly (Tensor | null)[]
  /** Forward outputs. */
  y: readonly Tensor[]
  /** Gradient of the first output, summed over all its uses. */
  g: Tensor
  /** Gradients of every output (null where nothing flows back). */
  gys: readonly (Tensor | null)[]
}

export type GradRule = (c: GradContext) => (Tensor | null)[]

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI)
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI)

const last2 = (t: Tensor) =>
  op.transpose(
    t,
    [...t.shape.keys()].map((i) => (i < t.rank - 2 ? i : i === t.rank - 2 ? t.rank - 1 : t.rank - 2)),
  )
const noGrad: GradRule = (c) => c.x.map(() => null)
/** t is a swap of a 2-D tensor's axes (how ops.linear presents W as Wᵀ). */
const isTranspose2d = (t: Tensor) => t.rank === 2 && t.producer?.op === 'Transpose' && (t.producer.attrs.perm.value as number[])[0] === 1

function scalarValue(t: Tensor | null, what: string): number {
  const c = t?.graph.constants.find((k) => k.tensor === t)
  if (!c) throw new GraphError(`grad: ${what} must be a constant to differentiate through it`)
  return Number(c.value.data[0])
}

/** d/dx of the reduction: bring g back to x's rank (unsqueeze reduced axes) and broadcast. */
function undoReduce(c: GradContext, scaleByCount: boolean): Tensor {
  const x = c.x[0]!
  const axes = constInts(c.node.inputs[1]!)
  let g = c.g
  if (c.node.attrs.keepdims?.value === 0) g = op.unsqueeze(g, axes)
  g = op.expandLike(g, x)
  if (!scaleByCount) return g
  const counts = axes.map((a) => x.shape[a])
  if (counts.every((d) => typeof d === 'number')) return op.mul(g, 1 / (counts as number[]).reduce((p, q) => p * q, 1))
  const n = axes.map((a) => op.cast(op.dimOf(x, a), x.dtype)).reduce((p, q) => op.mul(p, q))
  return op.div(g, n)
}

export const GRADIENTS: Record<string, GradRule> = {
  Identity: ({ g }) => [g],
  Add: ({ g }) => [g, g],
  Sub: ({ g }) => [g, op.neg(g)],
  Mul: ({ g, x: [a, b] }) => [op.mul(g, b!), op.mul(g, a!)],
  Div: ({ g, x: [, b], y: [y] }) => [op.div(g, b!), op.neg(op.div(op.mul(g, y), b!))],
  Pow: ({ g, x: [a, b], y: [y] }) => [op.mul(g, op.mul(b!, op.pow(a!, op.sub(b!, 1)))), op.mul(g, op.mul(y, op.log(a!)))],
  Neg: ({ g }) => [op.neg(g)],
  Sqrt: ({ g, y: [y] }) => [op.div(op.mul(g, 0.5), y)],
  Exp: ({ g, y: [y] }) => [op.mul(g, y)],
  Log: ({ g, x: [a] }) => [op.div(g, a!)],
  Tanh: ({ g, y: [y] }) => [op.mul(g, op.sub(1, op.mul(y, y)))],
  Erf: ({ g, x: [a] }) => [op.mul(g, op.mul(op.exp(op.neg(op.mul(a!, a!))), 2 / Math.sqrt(Math.PI)))],
  Sum: ({ g, x }) => x.map(() => g),
  Cast: ({ g, x: [a] }) => [isFloat(a!.dtype) ? op.cast(g, a!.dtype) : null],
  Where: ({ g, x: [cond] }) => [null, op.where(cond!, g, 0), op.where(cond!, 0, g)],
  Min: ({ g, x: [a], y: [y] }) => [op.where(op.equal(a!, y), g, 0), op.where(op.equal(a!, y), 0, g)],

  Gelu: ({ g, x: [a], node }) => {
    const x = a!
    if (node.attrs.approximate?.value === 'tanh') {
      // u = √(2/π)(x + 0.044715x³); d/dx = ½(1+tanh u) + ½x(1−tanh²u)·√(2/π)(1 + 3·0.044715x²)
      const x2 = op.mul(x, x)
      const t = op.tanh(op.mul(op.add(x, op.mul(op.mul(x2, x), 0.044715)), SQRT_2_OVER_PI))
      const du = op.mul(op.add(op.mul(x2, 3 * 0.044715), 1), SQRT_2_OVER_PI)
      const d = op.add(op.mul(op.add(t, 1), 0.5), op.mul(op.mul(op.mul(x, 0.5), op.sub(1, op.mul(t, t))), du))
      return [op.mul(g, d)]
    }
    // d/dx x·Φ(x) = Φ(x) + x·φ(x)
    const cdf = op.mul(op.add(op.erf(op.mul(x, Math.SQRT1_2)), 1), 0.5)
    const pdf = op.mul(op.exp(op.mul(op.mul(x, x), -0.5)), INV_SQRT_2PI)
    return [op.mul(g, op.add(cdf, op.mul(x, pdf)))]
  },

  MatMul: ({ g, x: [a, b] }) => {
    const A = a!
    const B = b!
    // linear(x, W) = x·Wᵀ: B is Transpose(W). Emit dB as (gᵀ·x)ᵀ; the Transpose rule below then cancels the
    // outer transpose, so dW = gᵀ·x is one GEMM with no Transpose of the [out, in] gradient at run time.
    if (B.rank === 2 && isTranspose2d(B)) {
      const K = A.shape[A.rank - 1]
      const N = B.shape[1]
      const rows = A.shape.slice(0, -1).reduce(mulDims)
      const dW = op.matmul(op.transpose(op.reshape(g, [rows, N]), [1, 0]), op.reshape(A, [rows, K]))
      return [op.matmul(g, last2(B)), op.transpose(dW, [1, 0])]
    }
    // x·W with a 2-D W: fold the batch dims into rows so dW is one GEMM, not a batched GEMM plus a reduce.
    if (B.rank === 2 && A.rank > 2) {
      const K = A.shape[A.rank - 1]
      const N = B.shape[1]
      const rows = A.shape.slice(0, -1).reduce(mulDims)
      const dB = op.matmul(op.transpose(op.reshape(A, [rows, K]), [1, 0]), op.reshape(g, [rows, N]))
      return [op.matmul(g, last2(B)), dB]
    }
    return [op.matmul(g, last2(B)), op.matmul(last2(A), g)]
  },

  Transpose: ({ g, node }) => {
    const perm = node.attrs.perm.value as number[]
    const inv = perm.map((_, i) => perm.indexOf(i))
    // g = Transpose(h, p) with p∘inv = identity (see the MatMul rule): the two cancel, so return h itself.
    const gp = g.producer
    if (gp?.op === 'Transpose') {
      const p = gp.attrs.perm.value as number[]
      if (inv.every((q, i) => p[q] === i)) return [gp.inputs[0]!]
    }
    return [op.transpose(g, inv)]
  },
  // reshapeLike reads the input's run-time shape when it is symbolic ([batch*seq, C] back to [batch, seq, C]).
  Reshape: ({ g, x: [a] }) => [op.reshapeLike(g, a!), null],
  Unsqueeze: ({ g, x: [a] }) => [op.reshapeLike(g, a!), null],
  Squeeze: ({ g, x: [a] }) => [op.reshapeLike(g, a!), null],
  Expand: ({ g }) => [g, null],

  Concat: ({ g, x, node }) => {
    const axis = node.attrs.axis.value as number
    const sizes = x.map((t) => t!.shape[axis])
    if (sizes.some((d) => typeof d !== 'number')) throw new GraphError(`grad of Concat: sizes along axis ${axis} must be static, got [${sizes.join(',')}]`)
    return op.split(g, sizes as number[], axis)
  },
  Split: ({ gys, y, node }) => {
    const axis = node.attrs.axis.value as number
    return [
      op.concat(
        gys.map((gi, i) => gi ?? op.zerosLike(y[i])),
        axis,
      ),
      null,
    ]
  },
  Slice: ({ g, x: [a, starts, ends, axes] }) => {
    const x = a!
    const pads = new Array<number>(2 * x.rank).fill(0)
    const s = constInts(starts!)
    const e = constInts(ends!)
    constInts(axes!).forEach((axis, i) => {
      const ax = axis < 0 ? axis + x.rank : axis // Slice nodes keep the axes as the caller gave them
      const d = x.shape[ax]
      if (typeof d !== 'number') throw new GraphError(`grad of Slice: axis ${ax} of ${x.describe()} must be static`)
      const st = Math.min(Math.max(s[i] < 0 ? s[i] + d : s[i], 0), d)
      const en = Math.min(Math.max(e[i] < 0 ? e[i] + d : e[i], 0), d)
      pads[ax] = st
      pads[ax + x.rank] = d - en
    })
    return [op.pad(g, pads), null, null, null]
  },

  Gather: ({ g, x: [data, idx], node }) => {
    if ((node.attrs.axis?.value ?? 0) !== 0)
      throw new GraphError('grad of Gather: only axis 0 (embedding lookup) is differentiable; use GatherElements for other axes')
    return [op.scatterND(op.zerosLike(data!), op.unsqueeze(idx!, [-1]), g, 'add'), null]
  },
  GatherElements: ({ g, x: [data, idx], node }) => [op.scatterElements(op.zerosLike(data!), idx!, g, node.attrs.axis.value as number, 'add'), null],
  GatherND: ({ g, x: [data, idx] }) => [op.scatterND(op.zerosLike(data!), idx!, g, 'add'), null],
  ScatterElements: ({ g, x: [, idx, upd], node }) => {
    const axis = node.attrs.axis.value as number
    const dData = node.attrs.reduction?.value === 'add' ? g : op.scatterElements(g, idx!, op.zerosLike(upd!), axis)
    return [dData, null, op.gatherElements(g, idx!, axis)]
  },
  ScatterND: ({ g, x: [, idx, upd], node }) => {
    const dData = node.attrs.reduction?.value === 'add' ? g : op.scatterND(g, idx!, op.zerosLike(upd!))
    return [dData, null, op.gatherND(g, idx!)]
  },
  TopK: ({ gys, x: [a], y: [, indices], node }) => [
    gys[0] ? op.scatterElements(op.zerosLike(a!), indices, gys[0], node.attrs.axis.value as number, 'add') : null,
    null,
  ],
  Trilu: ({ g, x: [, k], node }) => [op.trilu(g, node.attrs.upper.value === 1, k ? scalarValue(k, 'Trilu k') : 0), null],
  Pad: ({ g, x: [a, pads] }) => {
    const p = constInts(pads!)
    const r = a!.rank
    const ends = a!.shape.map((d, i) => {
      if (typeof d !== 'number') throw new GraphError(`grad of Pad: ${a!.describe()} must have a static shape`)
      return p[i] + d
    })
    return [op.slice(g, p.slice(0, r), ends, [...Array(r).keys()]), null, null]
  },

  ReduceSum: (c) => [undoReduce(c, false), null],
  ReduceMean: (c) => [undoReduce(c, true), null],

  Softmax: ({ g, y: [y], node }) => {
    const axis = node.attrs.axis.value as number
    return [op.mul(y, op.sub(g, op.reduceSum(op.mul(g, y), [axis], true)))]
  },
  LogSoftmax: ({ g, y: [y], node }) => {
    const axis = node.attrs.axis.value as number
    return [op.sub(g, op.mul(op.exp(y), op.reduceSum(g, [axis], true)))]
  },
  LayerNormalization: ({ g, x: [x, scale, bias], y: [, stashMean, stashInvStd], node }) => {
    // x̂ = (x−μ)·σ⁻¹;  dx = σ⁻¹·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) with ĝ = g·γ
    let mean = stashMean
    let invStd = stashInvStd
    if (x!.dtype === 'float64') {
      // The saved statistics are float32 (the stash type): recompute them in float64 so float64 graphs
      // (gradient checks) keep float64 accuracy. float32 graphs reuse the forward values as they are.
      mean = op.reduceMean(x!, [-1], true)
      const centered = op.sub(x!, mean)
      const eps = Math.fround(node.attrs.epsilon.value as number) // the float32 attribute value ORT uses
      invStd = op.div(1, op.sqrt(op.add(op.reduceMean(op.mul(centered, centered), [-1], true), eps)))
    } else if (mean.dtype !== x!.dtype) {
      mean = op.cast(mean, x!.dtype)
      invStd = op.cast(invStd, x!.dtype)
    }
    const xhat = op.mul(op.sub(x!, mean), invStd)
    const gh = op.mul(g, scale!)
    const axes = [...Array(x!.rank - 1).keys()]
    const dx = op.mul(invStd, op.sub(op.sub(gh, op.reduceMean(gh, [-1], true)), op.mul(xhat, op.reduceMean(op.mul(gh, xhat), [-1], true))))
    return [dx, op.reduceSum(op.mul(g, xhat), axes), bias ? op.reduceSum(g, axes) : null]
  },
  Dropout: ({ g, x: [, ratio], y: [, mask] }) => {
    const r = scalarValue(ratio, 'Dropout ratio')
    // ONNX Runtime reads the ratio as float32 and scales by 1 / (1 − ratio₃₂) (measured in float64 graphs):
    // use that very value, so float64 backward passes match the forward exactly.
    const scale = 1 / (1 - Math.fround(r))
    return [op.mul(op.mul(g, op.cast(mask, g.dtype)), scale), null, null]
  },
  SoftmaxCrossEntropyLoss: ({ g, x: [logits, labels], y: [, logProb] }) => {
    const L = logits!
    const V = L.shape[1]
    if (typeof V !== 'number') throw new GraphError(`grad of SoftmaxCrossEntropyLoss: the class count must be static, got ${L.describe()}`)
    const n = L.shape[0]
    const scale = typeof n === 'number' ? op.mul(g, 1 / n) : op.div(g, op.cast(op.dimOf(L, 0), L.dtype))
    return [op.mul(op.sub(op.exp(logProb), op.oneHot(labels!, V, L.dtype)), scale), null]
  },

  // Integer, boolean and shape-producing ops: nothing flows back.
  Shape: noGrad,
  Range: noGrad,
  ConstantOfShape: noGrad,
  Equal: noGrad,
  Less: noGrad,
  Greater: noGrad,
  OneHot: noGrad,
}

function constInts(t: Tensor): number[] {
  const c = t.graph.constants.find((k) => k.tensor === t)
  if (!c) throw new GraphError(`grad: '${t.name}' must be a constant (static slice/pad parameters) to differentiate`)
  return Array.from(c.value.data as BigInt64Array, Number)
}
