import { allocTyped, type DType, float16Bits, type TypedArrayFor } from './dtype'
import { GraphError } from './errors'

/** The default-domain ONNX opset moas graphs declare: at 21 every op tensor-core emits has a CPU kernel. */
export const OPSET = 21

/** A dimension: a static size, or a named symbolic size such as 'batch' or 'batch*seq'. */
export type Dim = number | string
export type Shape = readonly Dim[]

/** ONNX node attribute, typed explicitly because JS numbers cannot tell int from float. */
export type AttrValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'ints'; value: readonly number[] }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: ConstantValue }

export const attr = {
  int: (value: number): AttrValue => ({ kind: 'int', value }),
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  ints: (value: readonly number[]): AttrValue => ({ kind: 'ints', value }),
  floats: (value: readonly number[]): AttrValue => ({ kind: 'floats', value }),
  string: (value: string): AttrValue => ({ kind: 'string', value }),
  tensor: (value: ConstantValue): AttrValue => ({ kind: 'tensor', value }),
}

export interface ConstantValue {
  dtype: DType
  shape: readonly number[]
  data: TypedArrayFor
}

export interface Node {
  readonly op: string
  readonly domain: string
  readonly name: string
  /** null marks an omitted optional input. */
  readonly inputs: readonly (Tensor | null)[]
  readonly outputs: readonly Tensor[]
  readonly attrs: Readonly<Record<string, AttrValue>>
}

export type TensorKind = 'input' | 'param' | 'constant' | 'node'

/** A symbolic tensor: a named value in a Graph with a dtype and a (partly symbolic) shape. */
export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    readonly kind: TensorKind,
    /** The node that computes this tensor (kind 'node' only). */
    readonly producer: Node | null = null,
  ) {}

  get rank(): number {
    return this.shape.length
  }

  /** `name: float32[batch,seq,384]`, the form every error message uses. */
  describe(): string {
    return `'${this.name}': ${this.dtype}[${this.shape.join(',')}]`
  }
}

/** How a parameter is initialized; kept on the graph so a model's init lives beside its definition. */
export type ParamInit = { kind: 'normal'; std: number } | { kind: 'zeros' } | { kind: 'ones' }

export interface ParamInfo {
  tensor: Tensor
  init: ParamInit
  /** Whether AdamW applies weight decay to this parameter. */
  decay: boolean
}

export interface ConstantInfo {
  tensor: Tensor
  value: ConstantValue
}

/**
 * One noise-input dropout site: a bool graph input, true where the element is kept, that the caller fills
 * each step so that an element is dropped with probability `threshold` / 65536 (the trainer: from uniform
 * uint16 noise, kept where noise ≥ threshold). The graph scales kept elements by 65536 / (65536 − threshold).
 */
export interface DropoutMaskInput {
  readonly input: Tensor
  readonly threshold: number
  /**
   * The site drops causal attention probabilities whose last two axes are [T, T] (query × key): every
   * entry above the diagonal multiplies a probability that is exactly 0, in the forward and the backward
   * pass, so its mask value never matters and a caller may leave it unfilled (the trainer draws only the
   * lower triangle, about half the noise of such a site).
   */
  readonly causal?: boolean
}

/**
 * A computation graph under construction. Nodes are appended in execution order, so `nodes` is always
 * topologically sorted; autodiff and serialization rely on that.
 */
export class Graph {
  readonly nodes: Node[] = []
  readonly inputs: Tensor[] = []
  readonly params: ParamInfo[] = []
  readonly constants: ConstantInfo[] = []
  readonly outputs: Tensor[] = []
  readonly docs = new Map<string, string>()
  /** The bool keep-mask inputs of the dropout sites when `dropoutNoise` is on, in graph-input order (see ops.dropout). */
  readonly dropoutMasks: DropoutMaskInput[] = []
  /** Take dropout randomness from caller-fed keep masks instead of ONNX Dropout's internal RNG. */
  dropoutNoise = false
  /** Identity nodes that autodiff does not pass gradients through (ops.stopGradient). */
  readonly gradientStops = new Set<Node>()
  /**
   * The default-domain opset the model declares (OPSET, 21, unless raised). Raise it only for a graph that
   * needs a newer op (e.g. opset-23 Attention): ONNX Runtime has no CPU kernel for the random ops at ≥ 22.
   */
  opset = OPSET
  private readonly names = new Set<string>()
  private readonly scopes: string[] = []
  private readonly scalarCache = new Map<string, Tensor>()
  private counter = 0

  constructor(readonly name = 'moas') {}

  /** Run `fn` with node names prefixed by `name/`, so viewers show the model's structure. */
  scope<T>(name: string, fn: () => T): T {
    this.scopes.push(name)
    try {
      return fn()
    } finally {
      this.scopes.pop()
    }
  }

  uniqueName(base: string): string {
    const prefix = this.scopes.length ? `${this.scopes.join('/')}/` : ''
    let name = `${prefix}${base}`
    while (this.names.has(name)) name = `${prefix}${base}_${++this.counter}`
    this.names.add(name)
    return name
  }

  /** A scope-prefixed name not used yet, left unreserved for input()/param(), which reserve it themselves. */
  freshName(base: string): string {
    const name = this.uniqueName(base)
    this.names.delete(name)
    return name
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new GraphError(`graph '${this.name}': the name '${name}' is already used; names of inputs and parameters must be unique`)
    this.names.add(name)
    return name
  }

  input(name: string, dtype: DType, shape: Shape, doc?: string): Tensor {
    checkShape(shape, `input '${name}'`)
    const t = new Tensor(this, this.claim(name), dtype, shape, 'input')
    this.inputs.push(t)
    if (doc) this.docs.set(name, doc)
    return t
  }

  param(name: string, shape: readonly number[], opts: { init: ParamInit; decay?: boolean; dtype?: DType }): Tensor {
    checkShape(shape, `param '${name}'`)
    if (shape.some((d) => typeof d !== 'number')) throw new GraphError(`param '${name}': parameter shapes must be static, got [${shape.join(',')}]`)
    const t = new Tensor(this, this.claim(name), opts.dtype ?? 'float32', shape, 'param')
    this.params.push({ tensor: t, init: opts.init, decay: opts.decay ?? shape.length >= 2 })
    return t
  }

  constant(data: ArrayLike<number> | ArrayLike<bigint> | TypedArrayFor, shape: readonly number[], dtype: DType, base = 'const'): Tensor {
    const n = shape.reduce((a, b) => a * b, 1)
    if (data.length !== n) throw new GraphError(`constant '${base}': ${data.length} values do not fill shape [${shape.join(',')}] (${n} elements)`)
    let arr = allocTyped(dtype, n)
    // float16 constants are given as numbers and stored as their IEEE half bit patterns.
    if (dtype === 'float16') arr = float16Bits(Array.from(data as ArrayLike<number>, Number))
    else for (let i = 0; i < n; i++) (arr as unknown as (number | bigint)[])[i] = dtype === 'int64' ? BigInt(data[i] as number | bigint) : Number(data[i])
    const t = new Tensor(this, this.uniqueName(base), dtype, shape, 'constant')
    this.constants.push({ tensor: t, value: { dtype, shape, data: arr } })
    return t
  }

  /** A rank-0 constant, shared by every use of the same value and dtype. */
  scalar(value: number, dtype: DType = 'float32'): Tensor {
    const key = `${dtype}:${Object.is(value, -0) ? '-0' : value}`
    let t = this.scalarCache.get(key)
    if (!t) {
      t = this.constant([value], [], dtype, 'scalar')
      this.scalarCache.set(key, t)
    }
    return t
  }

  /** A 1-D int64 constant (shapes, axes, indices), shared by identical values. */
  ints(values: readonly number[]): Tensor {
    const key = `ints:${values.join(',')}`
    let t = this.scalarCache.get(key)
    if (!t) {
      t = this.constant(values, [values.length], 'int64', 'ints')
      this.scalarCache.set(key, t)
    }
    return t
  }

  /** Append a node; returns its output tensors. Shape inference is the caller's (the op's) job. */
  addNode(
    op: string,
    inputs: readonly (Tensor | null)[],
    outputs: readonly { dtype: DType; shape: Shape }[],
    attrs: Record<string, AttrValue> = {},
    domain = '',
  ): Tensor[] {
    for (const t of inputs) {
      if (t && t.graph !== this) throw new GraphError(`${op}: input ${t.describe()} belongs to graph '${t.graph.name}', not '${this.name}'`)
    }
    const name = this.uniqueName(op)
    const outs: Tensor[] = []
    const node: Node = { op, domain, name, inputs, outputs: outs, attrs }
    outputs.forEach((o, i) => outs.push(new Tensor(this, outputs.length === 1 ? `${name}:out` : `${name}:out${i}`, o.dtype, o.shape, 'node', node)))
    this.nodes.push(node)
    return outs
  }

  /** Mark `t` as a graph output called `name` (an Identity node renames it when needed). */
  output(name: string, t: Tensor, doc?: string): Tensor {
    if (t.graph !== this) throw new GraphError(`output '${name}': tensor ${t.describe()} belongs to another graph`)
    const [out] = this.addNode('Identity', [t], [{ dtype: t.dtype, shape: t.shape }])
    const renamed = new Tensor(this, this.claim(name), out.dtype, out.shape, 'node', out.producer)
    ;(out.producer!.outputs as Tensor[])[0] = renamed
    this.outputs.push(renamed)
    if (doc) this.docs.set(name, doc)
    return renamed
  }

  paramNames(): string[] {
    return this.params.map((p) => p.tensor.name)
  }
}

/**
 * The nodes that contribute to some graph output, in graph order. The serializer writes only these:
 * ONNX Runtime runs every node it is given, whether or not anything reads its result (measured: a dead
 * Slice and Exp stay in its optimized model), so a value a builder computed and nobody used would cost
 * time on every run.
 */
export function liveNodes(graph: Graph): Node[] {
  const live = producersOf(graph.outputs)
  return graph.nodes.filter((n) => live.has(n))
}

/** Every node that `tensors` depend on, directly or through other nodes (the live-node walk). */
export function producersOf(tensors: readonly Tensor[]): Set<Node> {
  const seen = new Set<Node>()
  const stack = tensors.flatMap((t) => (t.producer ? [t.producer] : []))
  while (stack.length) {
    const n = stack.pop()!
    if (seen.has(n)) continue
    seen.add(n)
    for (const t of n.inputs) if (t?.producer) stack.push(t.producer)
  }
  return seen
}

export function checkShape(shape: Shape, where: string): void {
  for (const d of shape) {
    if (typeof d === 'number' ? !(Number.isInteger(d) && d >= 0) : d.length === 0)
      throw new GraphError(`${where}: invalid dimension ${JSON.stringify(d)} in [${shape.join(',')}]; dims are non-negative integers or symbolic names`)
  }
}

/** Number of elements, or null when a dimension is symbolic. */
export function numel(shape: Shape): number | null {
  let n = 1
  for (const d of shape) {
    if (typeof d !== 'number') return null
    n *= d
  }
  return n
}

/** Product of two dims, keeping symbolic factors sorted so 'a*b' and 'b*a' compare equal. */
/** The size of a joined with b along one axis, as Concat names it: a sum of numbers, else `a+b`. */
export function addDims(a: Dim, b: Dim): Dim {
  return typeof a === 'number' && typeof b === 'number' ? a + b : `${a}+${b}`
}

export function mulDims(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a * b
  if (a === 1) return b
  if (b === 1) return a
  let num = 1
  const syms: string[] = []
  for (const d of [a, b]) {
    for (const f of String(d).split('*')) {
      const v = Number(f)
      if (Number.isInteger(v) && f.trim() !== '') num *= v
      else syms.push(f)
    }
  }
  syms.sort()
  return (num === 1 ? '' : `${num}*`) + syms.join('*')
}

export function normAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis
  if (a < 0 || a >= rank) throw new GraphError(`${op}: axis ${axis} is out of range for rank ${rank}`)
  return a
}

/** Numpy-style broadcast of several shapes; throws with the op name and the offending shapes. */
export function broadcastShapes(op: string, ...tensors: Tensor[]): Dim[] {
  const rank = Math.max(...tensors.map((t) => t.rank))
  const out: Dim[] = []
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1
    for (const t of tensors) {
      const td = t.shape[t.rank - rank + i] ?? 1
      if (td === 1 || td === d) continue
      if (d === 1) d = td
      else
        throw new GraphError(
          `${op}: cannot broadcast ${tensors.map((x) => x.describe()).join(' with ')} (dimension ${i} from the right-aligned end: ${d} vs ${td})`,
        )
    }
    out.push(d)
  }
  return out
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i])
}
