/**
 * The ops a transformer needs, each a function that checks its inputs, infers the output shape at build
 * time and appends one standard ONNX node (opset 21). Gradients live in gradients.ts, keyed by ONNX op type.
 */
import { type DType, float16Bits, isFloat, ONNX_DTYPE } from './dtype'
import { GraphError } from './errors'
import { type AttrValue, addDims, attr, broadcastShapes, type Dim, normAxis, numel, type Shape, sameShape, Tensor } from './graph'

type Operand = Tensor | number

function fail(op: string, msg: string, ...inputs: Tensor[]): never {
  const ins = inputs.length ? ` (inputs: ${inputs.map((t) => t.describe()).join(', ')})` : ''
  throw new GraphError(`${op}: ${msg}${ins}`)
}

/** Turn numbers into scalar constants of the tensor operand's dtype and check dtypes agree. */
function operands(op: string, ...xs: Operand[]): Tensor[] {
  const t = xs.find((x): x is Tensor => x instanceof Tensor)
  if (!t) throw new GraphError(`${op}: at least one operand must be a tensor`)
  const ts = xs.map((x) => (x instanceof Tensor ? x : t.graph.scalar(x, t.dtype)))
  for (const x of ts) if (x.dtype !== t.dtype) fail(op, `dtype mismatch: ${t.dtype} vs ${x.dtype}; insert cast() to make them agree`, ...ts)
  return ts
}

function node1(op: string, inputs: (Tensor | null)[], dtype: DType, shape: Shape, attrs = {}, domain = ''): Tensor {
  const g = (inputs.find((x) => x) as Tensor).graph
  return g.addNode(op, inputs, [{ dtype, shape }], attrs, domain)[0]
}

function requireFloat(op: string, ...xs: Tensor[]): void {
  for (const x of xs) if (!isFloat(x.dtype)) fail(op, `expects floating-point inputs, got ${x.dtype}`, ...xs)
}

// ---------------------------------------------------------------- elementwise

function binary(op: string, a: Operand, b: Operand): Tensor {
  const [x, y] = operands(op, a, b)
  return node1(op, [x, y], x.dtype, broadcastShapes(op, x, y))
}

export const add = (a: Operand, b: Operand) => binary('Add', a, b)
export const sub = (a: Operand, b: Operand) => binary('Sub', a, b)
export const mul = (a: Operand, b: Operand) => binary('Mul', a, b)
export const div = (a: Operand, b: Operand) => binary('Div', a, b)
export const pow = (a: Operand, b: Operand) => binary('Pow', a, b)

function compare(op: string, a: Operand, b: Operand): Tensor {
  const [x, y] = operands(op, a, b)
  return node1(op, [x, y], 'bool', broadcastShapes(op, x, y))
}
export const equal = (a: Operand, b: Operand) => compare('Equal', a, b)
export const less = (a: Operand, b: Operand) => compare('Less', a, b)
export const greater = (a: Operand, b: Operand) => compare('Greater', a, b)
export const lessOrEqual = (a: Operand, b: Operand) => compare('LessOrEqual', a, b)

function logical(op: string, a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== 'bool' || b.dtype !== 'bool') fail(op, `expects bool inputs, got ${a.dtype} and ${b.dtype}`, a, b)
  return node1(op, [a, b], 'bool', broadcastShapes(op, a, b))
}
export const and = (a: Tensor, b: Tensor) => logical('And', a, b)
export const or = (a: Tensor, b: Tensor) => logical('Or', a, b)

function unary(op: string, x: Tensor, float = true): Tensor {
  if (float) requireFloat(op, x)
  return node1(op, [x], x.dtype, x.shape)
}
export const neg = (x: Tensor) => unary('Neg', x, false)
export const sqrt = (x: Tensor) => unary('Sqrt', x)
export const exp = (x: Tensor) => unary('Exp', x)
export const log = (x: Tensor) => unary('Log', x)
export const tanh = (x: Tensor) => unary('Tanh', x)
export const erf = (x: Tensor) => unary('Erf', x)
export const identity = (x: Tensor) => unary('Identity', x, false)

/** x in the forward pass, and no gradient through it (an Identity that autodiff treats as a constant). */
export function stopGradient(x: Tensor): Tensor {
  const y = unary('Identity', x, false)
  x.graph.gradientStops.add(y.producer!)
  return y
}

/** Sum of several same-dtype tensors (fan-out gradients); one ONNX Sum node. */
export function sum(xs: Tensor[]): Tensor {
  if (xs.length === 0) throw new GraphError('Sum: needs at least one input')
  if (xs.length === 1) return xs[0]
  const ts = operands('Sum', ...xs)
  return node1('Sum', ts, ts[0].dtype, broadcastShapes('Sum', ...ts))
}

export function cast(x: Tensor, to: DType): Tensor {
  if (x.dtype === to) return x
  return node1('Cast', [x], to, x.shape, { to: attr.int(ONNX_DTYPE[to]) })
}

export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  if (cond.dtype !== 'bool') fail('Where', `condition must be bool, got ${cond.dtype}`, cond)
  const [x, y] = operands('Where', a, b)
  return node1('Where', [cond, x, y], x.dtype, broadcastShapes('Where', cond, x, y))
}

export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  requireFloat('Gelu', x)
  return node1('Gelu', [x], x.dtype, x.shape, { approximate: attr.string(approximate) })
}

// ---------------------------------------------------------------- linear algebra

/** Numpy matmul for rank >= 2 operands; batch dims broadcast. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  const [x, y] = operands('MatMul', a, b)
  if (x.rank < 2 || y.rank < 2) fail('MatMul', 'both operands need rank >= 2 (use reshape for vectors)', x, y)
  const k1 = x.shape[x.rank - 1]
  const k2 = y.shape[y.rank - 2]
  if (k1 !== k2) fail('MatMul', `inner dimensions differ: ${k1} vs ${k2}`, x, y)
  const bx = new Tensor(x.graph, x.name, x.dtype, x.shape.slice(0, -2), 'node')
  const by = new Tensor(y.graph, y.name, y.dtype, y.shape.slice(0, -2), 'node')
  let batch: Dim[]
  try {
    batch = broadcastShapes('MatMul', bx, by)
  } catch {
    fail('MatMul', 'batch dimensions do not broadcast', x, y)
  }
  return node1('MatMul', [x, y], x.dtype, [...batch, x.shape[x.rank - 2], y.shape[y.rank - 1]])
}

/**
 * y = x · Wᵀ + b with W stored [out, in] as PyTorch stores it. ONNX Runtime fuses the Transpose into
 * the MatMul (FusedMatMul transB), so the layout costs nothing at run time.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (weight.rank !== 2) fail('linear', `weight must be 2-D [out, in], got rank ${weight.rank}`, x, weight)
  if (x.shape[x.rank - 1] !== weight.shape[1])
    fail('linear', `input features ${x.shape[x.rank - 1]} do not match weight [out=${weight.shape[0]}, in=${weight.shape[1]}]`, x, weight)
  const y = matmul(x, transpose(weight, [1, 0]))
  return bias ? add(y, bias) : y
}

// ---------------------------------------------------------------- shape ops

export function shapeOf(x: Tensor): Tensor {
  return node1('Shape', [x], 'int64', [x.rank])
}

/**
 * Reshape to `shape`. Static dims are emitted as is; a symbolic dim equal to the input's dim at the same
 * position is emitted as 0 (copy); one remaining dim becomes -1 (inferred). Anything else is computed from
 * Shape(x) at run time, so symbolic batch/sequence sizes keep working.
 */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const g = x.graph
  const n1 = numel(x.shape)
  const n2 = numel(shape)
  if (n1 !== null && n2 !== null && n1 !== n2) fail('Reshape', `cannot reshape ${n1} elements into [${shape.join(',')}] (${n2} elements)`, x)
  if (sameShape(x.shape, shape)) return x
  const spec: number[] = []
  const unresolved: number[] = []
  shape.forEach((d, i) => {
    if (typeof d === 'number') spec.push(d)
    else if (i < x.rank && x.shape[i] === d) spec.push(0)
    else {
      spec.push(-1)
      unresolved.push(i)
    }
  })
  let shapeTensor: Tensor
  if (unresolved.length <= 1) shapeTensor = g.ints(spec)
  else {
    // Compute every unresolved dim that Shape(x) yields; at most one that it cannot stays -1 (inferred).
    const computable = unresolved.filter((i) => canComputeDim(x, shape[i] as string))
    const inferred = unresolved.filter((i) => !computable.includes(i))
    if (inferred.length > 1) dimFromShape(x, shape[inferred[1]] as string) // throws, naming the dim
    const parts = shape.map((d, i) => (computable.includes(i) ? dimFromShape(x, d as string) : g.ints([spec[i]])))
    shapeTensor = concat(parts, 0)
  }
  return node1('Reshape', [x, shapeTensor], x.dtype, shape)
}

/**
 * Reshape to a shape computed in the graph (int64 [rank]); `shape` is what it is at build time. For
 * shapes whose symbolic dims are not products of x's own (e.g. a split of a folded axis that may be 0,
 * where Reshape's -1 is ambiguous).
 */
export function reshapeTo(x: Tensor, shapeTensor: Tensor, shape: Shape): Tensor {
  if (shapeTensor.dtype !== 'int64' || shapeTensor.rank !== 1 || shapeTensor.shape[0] !== shape.length)
    fail('Reshape', `the shape tensor must be int64 [${shape.length}]`, x, shapeTensor)
  const n1 = numel(x.shape)
  const n2 = numel(shape)
  if (n1 !== null && n2 !== null && n1 !== n2) fail('Reshape', `cannot reshape ${n1} elements into [${shape.join(',')}] (${n2} elements)`, x)
  // allowzero: a 0 in the computed shape is a real empty dim, not ONNX's default "copy the input's dim".
  return node1('Reshape', [x, shapeTensor], x.dtype, shape, { allowzero: attr.int(1) })
}

function canComputeDim(x: Tensor, d: string): boolean {
  return x.shape.includes(d) || d.split('*').every((f) => x.shape.includes(Number.isNaN(Number(f)) ? f : Number(f)))
}

/** A symbolic dim computed at run time from the dims of x whose product it is. */
function dimFromShape(x: Tensor, d: string): Tensor {
  const direct = x.shape.indexOf(d)
  const s = shapeOf(x)
  if (direct >= 0) return slice(s, [direct], [direct + 1], [0])
  const factors = d.split('*')
  const idx = factors.map((f) => x.shape.indexOf(Number.isNaN(Number(f)) ? f : Number(f)))
  if (idx.some((i) => i < 0))
    throw new GraphError(`Reshape: cannot compute symbolic dim '${d}' from input ${x.describe()}; give a static size or reshape in steps`)
  return idx.map((i) => slice(s, [i], [i + 1], [0])).reduce((a, b) => mul(a, b))
}

/** Reshape x to the run-time shape of `like` (same element count), e.g. a gradient back to its input's shape. */
export function reshapeLike(x: Tensor, like: Tensor): Tensor {
  if (sameShape(x.shape, like.shape)) return x
  const n1 = numel(x.shape)
  const n2 = numel(like.shape)
  if (n1 !== null && n2 !== null && n1 !== n2) fail('Reshape', `cannot reshape ${n1} elements like ${like.describe()} (${n2} elements)`, x)
  if (n2 !== null) return reshape(x, like.shape)
  return node1('Reshape', [x, shapeOf(like)], x.dtype, like.shape)
}

export function transpose(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i))
    fail('Transpose', `perm [${perm.join(',')}] is not a permutation of ${x.rank} axes`, x)
  return node1(
    'Transpose',
    [x],
    x.dtype,
    perm.map((p) => x.shape[p]),
    { perm: attr.ints(perm) },
  )
}

export function unsqueeze(x: Tensor, axes: readonly number[]): Tensor {
  const rank = x.rank + axes.length
  const ax = axes.map((a) => normAxis(a, rank, 'Unsqueeze')).sort((a, b) => a - b)
  const out: Dim[] = []
  let j = 0
  for (let i = 0; i < rank; i++) out.push(ax.includes(i) ? 1 : x.shape[j++])
  return node1('Unsqueeze', [x, x.graph.ints(ax)], x.dtype, out)
}

export function squeeze(x: Tensor, axes: readonly number[]): Tensor {
  const ax = axes.map((a) => normAxis(a, x.rank, 'Squeeze'))
  for (const a of ax) if (x.shape[a] !== 1) fail('Squeeze', `axis ${a} has size ${x.shape[a]}, not 1`, x)
  return node1(
    'Squeeze',
    [x, x.graph.ints(ax)],
    x.dtype,
    x.shape.filter((_, i) => !ax.includes(i)),
  )
}

export function concat(xs: Tensor[], axis: number): Tensor {
  const ts = operands('Concat', ...xs)
  const rank = ts[0].rank
  const a = normAxis(axis, rank, 'Concat')
  let total: Dim | null = null
  for (const t of ts) {
    if (t.rank !== rank) fail('Concat', 'inputs have different ranks', ...ts)
    t.shape.forEach((d, i) => {
      if (i !== a && d !== ts[0].shape[i]) fail('Concat', `dimension ${i} differs (${ts[0].shape[i]} vs ${d})`, ...ts)
    })
    const d = t.shape[a]
    total = total === null ? d : addDims(total, d)
  }
  const shape = [...ts[0].shape]
  shape[a] = total!
  return node1('Concat', ts, ts[0].dtype, shape, { axis: attr.int(a) })
}

export function split(x: Tensor, sizes: readonly number[], axis: number): Tensor[] {
  const a = normAxis(axis, x.rank, 'Split')
  const total = sizes.reduce((p, q) => p + q, 0)
  if (x.shape[a] !== total) fail('Split', `sizes [${sizes.join(',')}] add up to ${total}, but axis ${a} has size ${x.shape[a]}`, x)
  const outs = sizes.map((s) => ({ dtype: x.dtype, shape: x.shape.map((d, i) => (i === a ? s : d)) }))
  return x.graph.addNode('Split', [x, x.graph.ints(sizes)], outs, { axis: attr.int(a) })
}

/** Static slice with step 1 (what models need); negative starts/ends count from the end. */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[], axes: readonly number[]): Tensor {
  const g = x.graph
  const shape = [...x.shape]
  axes.forEach((ax, i) => {
    const a = normAxis(ax, x.rank, 'Slice')
    const d = x.shape[a]
    if (typeof d !== 'number') {
      shape[a] = starts[i] >= 0 && ends[i] >= 0 && ends[i] < 2 ** 31 ? ends[i] - starts[i] : `slice(${d})`
      return
    }
    const s = Math.min(Math.max(starts[i] < 0 ? starts[i] + d : starts[i], 0), d)
    const e = Math.min(Math.max(ends[i] < 0 ? ends[i] + d : ends[i], 0), d)
    shape[a] = Math.max(e - s, 0)
  })
  return node1('Slice', [x, g.ints(starts), g.ints(ends), g.ints(axes)], x.dtype, shape)
}

/**
 * x[start:end] along `axis`, with start and end computed in the graph (int64 scalars, e.g. from dimOf);
 * `dim` names the result's size. For inference graphs (its gradient needs constant bounds).
 */
export function sliceAt(x: Tensor, start: Tensor, end: Tensor, axis: number, dim: Dim): Tensor {
  const a = normAxis(axis, x.rank, 'Slice')
  const bound = (t: Tensor) => {
    if (t.dtype !== 'int64' || t.rank > 1) fail('Slice', `bounds must be int64 scalars, got ${t.describe()}`, x)
    return t.rank === 0 ? unsqueeze(t, [0]) : t
  }
  const shape = [...x.shape]
  shape[a] = dim
  return node1('Slice', [x, bound(start), bound(end), x.graph.ints([a])], x.dtype, shape)
}

export function expand(x: Tensor, shape: Shape): Tensor {
  const target = new Tensor(x.graph, 'target', x.dtype, shape, 'node')
  const out = broadcastShapes('Expand', x, target)
  const spec = out.map((d) => (typeof d === 'number' ? d : 1))
  const shapeTensor = x.graph.ints(spec)
  if (out.some((d, i) => typeof d !== 'number' && x.shape[x.rank - out.length + i] !== d))
    throw new GraphError(`Expand: target [${shape.join(',')}] has symbolic dims that ${x.describe()} does not carry; use expandLike()`)
  return node1('Expand', [x, shapeTensor], x.dtype, out)
}

/** Broadcast x to the run-time shape of `like` (for symbolic dims). */
export function expandLike(x: Tensor, like: Tensor): Tensor {
  return node1('Expand', [x, shapeOf(like)], x.dtype, broadcastShapes('Expand', x, like))
}

/** Pad with a constant; pads = [begin_0, ..., begin_n, end_0, ..., end_n] (ONNX order). */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length !== 2 * x.rank) fail('Pad', `needs ${2 * x.rank} pad values, got ${pads.length}`, x)
  const shape = x.shape.map((d, i) => (typeof d === 'number' ? d + pads[i] + pads[i + x.rank] : pads[i] + pads[i + x.rank] === 0 ? d : `pad(${d})`))
  return node1('Pad', [x, x.graph.ints(pads), x.graph.scalar(value, x.dtype)], x.dtype, shape, { mode: attr.string('constant') })
}

export function minimum(a: Operand, b: Operand): Tensor {
  const [x, y] = operands('Min', a, b)
  return node1('Min', [x, y], x.dtype, broadcastShapes('Min', x, y))
}

export function maximum(a: Operand, b: Operand): Tensor {
  const [x, y] = operands('Max', a, b)
  return node1('Max', [x, y], x.dtype, broadcastShapes('Max', x, y))
}

export function constantOfShape(shapeTensor: Tensor, value: number, dtype: DType, shape: Shape): Tensor {
  const data =
    dtype === 'int64'
      ? new BigInt64Array([BigInt(value)])
      : dtype === 'float64'
        ? new Float64Array([value])
        : dtype === 'float16'
          ? float16Bits([value])
          : new Float32Array([value])
  return node1('ConstantOfShape', [shapeTensor], dtype, shape, { value: attr.tensor({ dtype, shape: [1], data }) })
}

/** Zeros with the (run-time) shape and dtype of x. */
export function zerosLike(x: Tensor): Tensor {
  return constantOfShape(shapeOf(x), 0, x.dtype, x.shape)
}

/** int64 [0, 1, ..., n-1] for an int64 scalar length `n` (from dimOf); `dim` names the result's size. */
export function range(n: Tensor, dim: Dim): Tensor {
  const g = n.graph
  return node1('Range', [g.scalar(0, 'int64'), n, g.scalar(1, 'int64')], 'int64', [dim])
}

/** Size of axis `axis` of x at run time, as an int64 scalar. */
export function dimOf(x: Tensor, axis: number): Tensor {
  const a = normAxis(axis, x.rank, 'dimOf')
  return squeeze(slice(shapeOf(x), [a], [a + 1], [0]), [0])
}

// ---------------------------------------------------------------- indexing

export function gather(data: Tensor, indices: Tensor, axis = 0): Tensor {
  if (indices.dtype !== 'int64' && indices.dtype !== 'int32') fail('Gather', `indices must be int64 or int32, got ${indices.dtype}`, data, indices)
  const a = normAxis(axis, data.rank, 'Gather')
  const shape = [...data.shape.slice(0, a), ...indices.shape, ...data.shape.slice(a + 1)]
  return node1('Gather', [data, indices], data.dtype, shape, { axis: attr.int(a) })
}

export function gatherElements(data: Tensor, indices: Tensor, axis: number): Tensor {
  const a = normAxis(axis, data.rank, 'GatherElements')
  if (indices.rank !== data.rank) fail('GatherElements', 'indices must have the rank of data', data, indices)
  return node1('GatherElements', [data, indices], data.dtype, indices.shape, { axis: attr.int(a) })
}

export function scatterElements(data: Tensor, indices: Tensor, updates: Tensor, axis: number, reduction: 'none' | 'add' = 'none'): Tensor {
  const a = normAxis(axis, data.rank, 'ScatterElements')
  if (!sameShape(indices.shape, updates.shape)) fail('ScatterElements', 'indices and updates must have the same shape', data, indices, updates)
  if (data.dtype !== updates.dtype) fail('ScatterElements', 'data and updates dtypes differ', data, updates)
  return node1('ScatterElements', [data, indices, updates], data.dtype, data.shape, { axis: attr.int(a), reduction: attr.string(reduction) })
}

export function gatherND(data: Tensor, indices: Tensor): Tensor {
  const k = indices.shape[indices.rank - 1]
  if (typeof k !== 'number') fail('GatherND', 'the last dim of indices must be static', data, indices)
  return node1('GatherND', [data, indices], data.dtype, [...indices.shape.slice(0, -1), ...data.shape.slice(k)])
}

export function scatterND(data: Tensor, indices: Tensor, updates: Tensor, reduction: 'none' | 'add' = 'none'): Tensor {
  if (data.dtype !== updates.dtype) fail('ScatterND', 'data and updates dtypes differ', data, updates)
  return node1('ScatterND', [data, indices, updates], data.dtype, data.shape, { reduction: attr.string(reduction) })
}

/**
 * The k largest (or smallest) entries along `axis`, sorted; ties keep the lower index first. k is a
 * number, or an int64 [1] tensor computed in the graph together with `dim`, the symbolic name of the
 * result's size on that axis (a data-dependent count, e.g. how many tokens a router sent to a branch).
 */
export function topk(x: Tensor, k: number | { k: Tensor; dim: string }, axis = -1, largest = true): [Tensor, Tensor] {
  const a = normAxis(axis, x.rank, 'TopK')
  const d = x.shape[a]
  if (typeof k === 'number' && typeof d === 'number' && (k < 1 || k > d)) fail('TopK', `k=${k} must be between 1 and the axis size ${d}`, x)
  const kTensor = typeof k === 'number' ? x.graph.ints([k]) : k.k
  if (kTensor.dtype !== 'int64' || kTensor.rank !== 1 || kTensor.shape[0] !== 1) fail('TopK', 'a computed k must be an int64 [1] tensor', x, kTensor)
  const size = typeof k === 'number' ? k : k.dim
  const shape = x.shape.map((s, i) => (i === a ? size : s))
  const [v, i] = x.graph.addNode(
    'TopK',
    [x, kTensor],
    [
      { dtype: x.dtype, shape },
      { dtype: 'int64', shape },
    ],
    {
      axis: attr.int(a),
      largest: attr.int(largest ? 1 : 0),
      sorted: attr.int(1),
    },
  )
  return [v, i]
}

export function oneHot(indices: Tensor, depth: number, dtype: DType): Tensor {
  // ONNX Runtime's CPU EP has no OneHot kernel with float64 values: build float32 (exact 0/1) and cast.
  if (dtype === 'float64') return cast(oneHot(indices, depth, 'float32'), 'float64')
  const g = indices.graph
  return node1('OneHot', [indices, g.scalar(depth, 'int64'), g.constant([0, 1], [2], dtype, 'onehot_values')], dtype, [...indices.shape, depth], {
    axis: attr.int(-1),
  })
}

/** Lower (upper=false) or upper triangle of the last two axes, the rest zeroed. */
export function trilu(x: Tensor, upper: boolean, k = 0): Tensor {
  if (x.rank < 2) fail('Trilu', 'needs rank >= 2', x)
  return node1('Trilu', [x, x.graph.scalar(k, 'int64')], x.dtype, x.shape, { upper: attr.int(upper ? 1 : 0) })
}

// ---------------------------------------------------------------- reductions and normalization

function reduce(op: string, x: Tensor, axes: readonly number[], keepdims: boolean): Tensor {
  const ax = axes.map((a) => normAxis(a, x.rank, op))
  const shape: Dim[] = []
  x.shape.forEach((d, i) => {
    if (!ax.includes(i)) shape.push(d)
    else if (keepdims) shape.push(1)
  })
  return node1(op, [x, x.graph.ints(ax)], x.dtype, shape, { keepdims: attr.int(keepdims ? 1 : 0) })
}
export const reduceSum = (x: Tensor, axes: readonly number[], keepdims = false) => reduce('ReduceSum', x, axes, keepdims)
export const reduceMean = (x: Tensor, axes: readonly number[], keepdims = false) => reduce('ReduceMean', x, axes, keepdims)
export const reduceMax = (x: Tensor, axes: readonly number[], keepdims = false) => reduce('ReduceMax', x, axes, keepdims)

export function softmax(x: Tensor, axis = -1): Tensor {
  requireFloat('Softmax', x)
  return node1('Softmax', [x], x.dtype, x.shape, { axis: attr.int(normAxis(axis, x.rank, 'Softmax')) })
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  requireFloat('LogSoftmax', x)
  return node1('LogSoftmax', [x], x.dtype, x.shape, { axis: attr.int(normAxis(axis, x.rank, 'LogSoftmax')) })
}

/**
 * LayerNormalization over the last axis. The node also outputs Mean and InvStdDev, which the backward
 * pass reuses instead of recomputing them.
 */
export function layerNorm(x: Tensor, scale: Tensor, bias: Tensor | null, eps = 1e-5): Tensor {
  requireFloat('LayerNormalization', x)
  const c = x.shape[x.rank - 1]
  if (scale.rank !== 1 || scale.shape[0] !== c) fail('LayerNormalization', `scale must be [${c}]`, x, scale)
  if (bias && (bias.rank !== 1 || bias.shape[0] !== c)) fail('LayerNormalization', `bias must be [${c}]`, x, bias)
  if (scale.dtype !== x.dtype || (bias && bias.dtype !== x.dtype)) fail('LayerNormalization', 'dtype mismatch', x, scale, ...(bias ? [bias] : []))
  const stat = [...x.shape.slice(0, -1), 1]
  // Mean and InvStdDev have the stash type (float32 by default in ONNX, and the only one ONNX Runtime
  // implements), whatever x's dtype is; y itself is computed in x's precision.
  const [y] = x.graph.addNode(
    'LayerNormalization',
    [x, scale, bias],
    [
      { dtype: x.dtype, shape: x.shape },
      { dtype: 'float32', shape: stat },
      { dtype: 'float32', shape: stat },
    ],
    { axis: attr.int(-1), epsilon: attr.float(eps) },
  )
  return y
}

/** What a dropout site drops, for noise-input dropout (see DropoutMaskInput.causal). */
export interface DropoutSite {
  /** x holds causal self-attention probabilities on its last two axes ([T, T], zero above the diagonal). */
  causal?: boolean
}

/**
 * Dropout; the identity (no node) when not training or ratio is 0. Two sources of randomness:
 * - default: ONNX Dropout with training_mode (its mask output is reused by the backward pass);
 * - `graph.dropoutNoise = true`: the graph gets a bool input `keep/...` per dropout site (listed in
 *   `graph.dropoutMasks` with its threshold round(ratio·65536)), filled by the caller from its own seeded
 *   PRNG each step so that an element is dropped with probability threshold / 65536; kept elements are
 *   scaled by 1/(1 − that fraction). The caller owns the random stream, so a resumed run reproduces the
 *   uninterrupted one exactly, and every runtime sees the same masks. `site.causal` marks causal attention
 *   probabilities, whose masks the caller need only fill below the diagonal (DropoutMaskInput.causal).
 */
export function dropout(x: Tensor, ratio: number, training: boolean, seed?: number, site: DropoutSite = {}): Tensor {
  requireFloat('Dropout', x)
  if (!(ratio >= 0 && ratio < 1)) fail('Dropout', `ratio must be in [0, 1), got ${ratio}`, x)
  if (!training || ratio === 0) return x
  const g = x.graph
  if (g.dropoutNoise) {
    const k = noiseKeep(x, ratio, site)
    // x · mask with mask = [noise ≥ threshold] / (1 − fraction), not Where(noise < threshold, 0, x·scale):
    // ONNX Runtime's Where with a broadcast scalar is 2-3× slower than Mul on attention-sized tensors, and
    // the backward pass reuses the mask (dx = g · mask). Same values: kept x·scale, dropped 0 (−0 for x < 0).
    return k ? mul(x, mul(k.keep, k.scale)) : x
  }
  const attrs: Record<string, AttrValue> = seed === undefined ? {} : { seed: attr.int(seed) }
  const [y] = g.addNode(
    'Dropout',
    [x, g.scalar(ratio, x.dtype), g.constant([1], [], 'bool', 'training_mode')],
    [
      { dtype: x.dtype, shape: x.shape },
      { dtype: 'bool', shape: x.shape },
    ],
    attrs,
  )
  return y
}

/**
 * Dropout without its rescale: `y` = x · keep, and the factor 1 / (1 − fraction) still to apply. For a
 * caller that can apply it to a smaller tensor downstream: attention rescales after p·v, [T, d] values per
 * head instead of [T, T], one full-size multiply fewer per layer. dropout(x) = y · scale. Without noise
 * inputs (ONNX Dropout rescales itself) and when nothing is dropped, the scale is 1.
 */
export function dropoutUnscaled(x: Tensor, ratio: number, training: boolean, seed?: number, site: DropoutSite = {}): { y: Tensor; scale: number } {
  requireFloat('Dropout', x)
  if (!(ratio >= 0 && ratio < 1)) fail('Dropout', `ratio must be in [0, 1), got ${ratio}`, x)
  if (!training || ratio === 0 || !x.graph.dropoutNoise) return { y: dropout(x, ratio, training, seed), scale: 1 }
  const k = noiseKeep(x, ratio, site)
  return k ? { y: mul(x, k.keep), scale: k.scale } : { y: x, scale: 1 }
}

/**
 * A noise-input dropout site: the bool keep input, keep in x's dtype, and 1 / (1 − fraction). The caller
 * draws the keep mask rather than feeding uint16 noise for the graph to compare: one op fewer per site
 * and half the bytes fed (bool vs uint16), for about the same cost in the caller's loop; a static-moas
 * paper step ran 6-11 % faster this way (`pnpm bench --bench dropout-mask` times one site both ways).
 */
function noiseKeep(x: Tensor, ratio: number, site: DropoutSite): { keep: Tensor; scale: number } | null {
  const g = x.graph
  if (numel(x.shape) === null) fail('Dropout', 'noise-input dropout needs a static shape; build the training graph with static batch and sequence sizes', x)
  const threshold = Math.round(ratio * 65536)
  const [tq, tk] = x.shape.slice(-2)
  if (site.causal && !(x.shape.length >= 2 && tq === tk))
    fail(
      'Dropout',
      `a causal site needs [..., T, T] attention probabilities, got shape [${x.shape.join(', ')}]; pass causal only for causal self-attention without a cache`,
      x,
    )
  const input = g.input(
    g.freshName('keep'),
    'bool',
    x.shape,
    `dropout keep mask: drop with probability ${threshold}/65536${site.causal ? ' (entries above the diagonal unused)' : ''}`,
  )
  g.dropoutMasks.push(site.causal ? { input, threshold, causal: true } : { input, threshold })
  if (threshold === 0) return null
  return { keep: cast(input, x.dtype), scale: 1 / (1 - threshold / 65536) }
}

/**
 * Mean cross entropy of `logits` [N, V] against int64 `labels` [N], in nats (ONNX SoftmaxCrossEntropyLoss).
 * Its log-probability output is kept for the backward pass.
 */
export function crossEntropy(logits: Tensor, labels: Tensor): Tensor {
  if (logits.rank !== 2) fail('SoftmaxCrossEntropyLoss', 'logits must be [N, classes]; reshape [B,T,V] to [B*T,V] first', logits)
  if (labels.rank !== 1 || labels.dtype !== 'int64') fail('SoftmaxCrossEntropyLoss', 'labels must be int64 [N]', logits, labels)
  if (labels.shape[0] !== logits.shape[0]) fail('SoftmaxCrossEntropyLoss', `batch sizes differ: ${logits.shape[0]} vs ${labels.shape[0]}`, logits, labels)
  const [loss] = logits.graph.addNode(
    'SoftmaxCrossEntropyLoss',
    [logits, labels],
    [
      { dtype: logits.dtype, shape: [] },
      { dtype: logits.dtype, shape: logits.shape },
    ],
    { reduction: attr.string('mean') },
  )
  return loss
}

/** Additive causal mask [T, T]: 0 where key <= query, -inf above the diagonal. T must be static here. */
export function causalMask(like: Tensor, T: number): Tensor {
  const data = new Array<number>(T * T)
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) data[i * T + j] = j <= i ? 0 : -Infinity
  return like.graph.constant(data, [T, T], like.dtype, 'causal_mask')
}
