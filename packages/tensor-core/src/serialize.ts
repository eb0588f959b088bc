/**
 * Graph → ONNX ModelProto bytes. A hand-written protobuf encoder (about 60 lines) instead of protobufjs:
 * we only ever write, the schema subset is small and fixed, and large initializers are copied once as
 * raw little-endian bytes rather than boxed into JS objects.
 */
import { type DType, ONNX_DTYPE, type TypedArrayFor } from './dtype'
import { GraphError } from './errors'
import { type AttrValue, type ConstantValue, type Graph, liveNodes, type Shape, type Tensor } from './graph'

export const IR_VERSION = 10
export const PRODUCER = 'moas'

class ProtoWriter {
  private buf = new Uint8Array(1024)
  private len = 0

  private reserve(n: number) {
    if (this.len + n <= this.buf.length) return
    let cap = this.buf.length * 2
    while (cap < this.len + n) cap *= 2
    const next = new Uint8Array(cap)
    next.set(this.buf.subarray(0, this.len))
    this.buf = next
  }

  varint(v: number | bigint) {
    let x = BigInt.asUintN(64, BigInt(v))
    this.reserve(10)
    while (x >= 0x80n) {
      this.buf[this.len++] = Number(x & 0x7fn) | 0x80
      x >>= 7n
    }
    this.buf[this.len++] = Number(x)
  }

  private tag(field: number, wire: number) {
    this.varint((field << 3) | wire)
  }

  int(field: number, v: number | bigint) {
    this.tag(field, 0)
    this.varint(v)
  }

  float(field: number, v: number) {
    this.tag(field, 5)
    this.reserve(4)
    new DataView(this.buf.buffer).setFloat32(this.len, v, true)
    this.len += 4
  }

  bytes(field: number, data: Uint8Array) {
    this.tag(field, 2)
    this.varint(data.length)
    this.reserve(data.length)
    this.buf.set(data, this.len)
    this.len += data.length
  }

  string(field: number, s: string) {
    this.bytes(field, new TextEncoder().encode(s))
  }

  message(field: number, write: (w: ProtoWriter) => void) {
    const w = new ProtoWriter()
    write(w)
    this.bytes(field, w.finish())
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.len)
  }
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

function rawBytes(data: TypedArrayFor): Uint8Array {
  if (!littleEndian) throw new GraphError('serialize: big-endian hosts are not supported')
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}

function writeTensor(w: ProtoWriter, name: string, v: ConstantValue) {
  for (const d of v.shape) w.int(1, d)
  w.int(2, ONNX_DTYPE[v.dtype])
  if (name) w.string(8, name)
  w.bytes(9, rawBytes(v.data))
}

function writeValueInfo(w: ProtoWriter, name: string, dtype: DType, shape: Shape, doc?: string) {
  w.string(1, name)
  w.message(2, (type) =>
    type.message(1, (tt) => {
      tt.int(1, ONNX_DTYPE[dtype])
      tt.message(2, (sh) => {
        for (const d of shape) sh.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)))
      })
    }),
  )
  if (doc) w.string(3, doc)
}

function writeAttr(w: ProtoWriter, name: string, a: AttrValue) {
  w.string(1, name)
  switch (a.kind) {
    case 'float':
      w.float(2, a.value)
      w.int(20, 1)
      break
    case 'int':
      w.int(3, a.value)
      w.int(20, 2)
      break
    case 'string':
      w.string(4, a.value)
      w.int(20, 3)
      break
    case 'tensor':
      w.message(5, (t) => writeTensor(t, '', a.value))
      w.int(20, 4)
      break
    case 'floats':
      for (const f of a.value) w.float(7, f)
      w.int(20, 6)
      break
    case 'ints':
      for (const i of a.value) w.int(8, i)
      w.int(20, 7)
      break
  }
}

export interface SerializeOptions {
  /**
   * Parameter values to embed as initializers (an inference export). Parameters without a value stay
   * graph inputs (a training graph feeds them every step).
   */
  params?: ReadonlyMap<string, Float32Array | Float64Array | Uint16Array>
  docString?: string
  metadata?: Record<string, string>
  /**
   * Write the embedded parameters to a separate file instead of inside the model (ONNX external data), as
   * models beyond protobuf's 2 GiB need: `location` is the data file's name relative to the model file.
   * Use serializeWithExternalData, which returns both files.
   */
  externalDataFile?: string
}

/** The model and its external data file (serializeWithExternalData). */
export interface ModelWithExternalData {
  model: Uint8Array
  /** The parameters' bytes, each at a 64-byte aligned offset, named by the model's `location`. */
  data: Uint8Array
  location: string
}

/** Encode `graph` with its embedded parameters in a separate external-data file (no 2 GiB limit on them). */
export function serializeWithExternalData(graph: Graph, opts: SerializeOptions & { externalDataFile: string }): ModelWithExternalData {
  const chunks: Uint8Array[] = []
  let length = 0
  const place = (bytes: Uint8Array) => {
    const pad = (64 - (length % 64)) % 64
    if (pad) chunks.push(new Uint8Array(pad))
    const offset = length + pad
    chunks.push(bytes)
    length = offset + bytes.byteLength
    return offset
  }
  const model = encode(graph, opts, place)
  const data = new Uint8Array(length)
  let at = 0
  for (const c of chunks) {
    data.set(c, at)
    at += c.byteLength
  }
  return { model, data, location: opts.externalDataFile }
}

/** Encode `graph` as an ONNX ModelProto (IR 10, default-domain opset `graph.opset`: 21 unless raised). */
export function serialize(graph: Graph, opts: SerializeOptions = {}): Uint8Array {
  if (opts.externalDataFile) throw new GraphError('serialize: externalData needs serializeWithExternalData, which returns the data file too')
  return encode(graph, opts, null)
}

function encode(graph: Graph, opts: SerializeOptions, external: ((bytes: Uint8Array) => number) | null): Uint8Array {
  const embedded = new Set<string>()
  for (const p of graph.params) if (opts.params?.has(p.tensor.name)) embedded.add(p.tensor.name)
  const nodes = liveNodes(graph)
  const usesMs = nodes.some((n) => n.domain === 'com.microsoft')
  const w = new ProtoWriter()
  w.int(1, IR_VERSION)
  w.string(2, PRODUCER)
  w.string(3, '0.1.0')
  w.string(4, 'ai.moas')
  w.int(5, 1)
  if (opts.docString) w.string(6, opts.docString)
  w.message(7, (gw) => {
    for (const node of nodes) {
      gw.message(1, (nw) => {
        // Trailing omitted optional inputs are left out rather than written as '': ONNX Runtime 1.30's
        // SkipLayerNormalization fusion segfaults on Add → LayerNormalization(x, scale, '') (measured).
        let n = node.inputs.length
        while (n > 0 && !node.inputs[n - 1]) n--
        for (const t of node.inputs.slice(0, n)) nw.string(1, t ? t.name : '')
        for (const t of node.outputs) nw.string(2, t.name)
        nw.string(3, node.name)
        nw.string(4, node.op)
        for (const [k, a] of Object.entries(node.attrs)) nw.message(5, (aw) => writeAttr(aw, k, a))
        if (node.domain) nw.string(7, node.domain)
      })
    }
    gw.string(2, graph.name)
    // Constants no written node reads (e.g. a model's zero balance loss in an eval graph) are left out:
    // ONNX Runtime would drop them anyway, with a warning on stderr for each one.
    const read = new Set([...nodes.flatMap((n) => n.inputs.map((t) => t?.name)), ...graph.outputs.map((t) => t.name)])
    for (const c of graph.constants) if (read.has(c.tensor.name)) gw.message(5, (tw) => writeTensor(tw, c.tensor.name, c.value))
    for (const p of graph.params) {
      if (!embedded.has(p.tensor.name)) continue
      const data = opts.params!.get(p.tensor.name)!
      const shape = p.tensor.shape as number[]
      if (data.length !== shape.reduce((a, b) => a * b, 1))
        throw new GraphError(`serialize: value for '${p.tensor.name}' has ${data.length} elements, expected [${shape.join(',')}]`)
      // The bytes are written raw, so the array type must be the parameter's dtype.
      const arrayDtype = data instanceof Float64Array ? 'float64' : data instanceof Float32Array ? 'float32' : data instanceof Uint16Array ? 'float16' : 'other'
      if (arrayDtype !== p.tensor.dtype)
        throw new GraphError(
          `serialize: value for '${p.tensor.name}' is a ${(data as object).constructor.name} but the parameter is ${p.tensor.dtype}; convert it (e.g. Float32Array.from(values); float16 as Uint16Array bit patterns, see float16Bits)`,
        )
      if (!external) gw.message(5, (tw) => writeTensor(tw, p.tensor.name, { dtype: p.tensor.dtype, shape, data }))
      else {
        const bytes = rawBytes(data)
        const offset = external(bytes)
        gw.message(5, (tw) => {
          for (const d of shape) tw.int(1, d)
          tw.int(2, ONNX_DTYPE[p.tensor.dtype])
          tw.string(8, p.tensor.name)
          for (const [key, value] of [
            ['location', opts.externalDataFile!],
            ['offset', String(offset)],
            ['length', String(bytes.byteLength)],
          ])
            tw.message(13, (ew) => {
              ew.string(1, key)
              ew.string(2, value)
            })
          tw.int(14, 1) // data_location: EXTERNAL
        })
      }
    }
    const inputs: Tensor[] = [...graph.inputs, ...graph.params.filter((p) => !embedded.has(p.tensor.name)).map((p) => p.tensor)]
    for (const t of inputs) gw.message(11, (vw) => writeValueInfo(vw, t.name, t.dtype, t.shape, graph.docs.get(t.name)))
    for (const t of graph.outputs) gw.message(12, (vw) => writeValueInfo(vw, t.name, t.dtype, t.shape, graph.docs.get(t.name)))
  })
  w.message(8, (ow) => {
    ow.string(1, '')
    ow.int(2, graph.opset)
  })
  if (usesMs)
    w.message(8, (ow) => {
      ow.string(1, 'com.microsoft')
      ow.int(2, 1)
    })
  for (const [k, v] of Object.entries(opts.metadata ?? {}))
    w.message(14, (mw) => {
      mw.string(1, k)
      mw.string(2, v)
    })
  return w.finish().slice()
}
