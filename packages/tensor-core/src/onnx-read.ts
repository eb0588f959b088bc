/**
 * Reading an ONNX model back: its nodes (op, inputs, outputs, attributes) and its initializers with their
 * data, from the model bytes and, for external-data models, the data file. A minimal protobuf reader for
 * the ModelProto fields serialize.ts writes and ONNX Runtime's optimized models use; written here rather
 * than taken from onnx-proto / protobufjs because it is ~150 lines, runs in the browser, and a full
 * schema-driven decoder would be heavier than the few fields needed. Browser-safe.
 */
import { allocTyped, type DType, ONNX_DTYPE, type TypedArrayFor } from './dtype'
import { GraphError } from './errors'

export interface OnnxNode {
  op: string
  domain: string
  name: string
  inputs: string[]
  outputs: string[]
  attrs: Record<string, number | number[] | string>
}

/** One initializer as stored: dtype, dims, and where its bytes are (inside the model or in external data). */
export interface OnnxInitializer {
  name: string
  /** null for an element type moas does not use (the initializer is listed, its data cannot be read). */
  dtype: DType | null
  dims: number[]
  /** The raw little-endian bytes when stored inside the model. */
  raw?: Uint8Array
  /** Where the bytes are in an external data file (data_location EXTERNAL). */
  external?: { location: string; offset: number; length: number }
}

export interface OnnxModelContents {
  nodes: OnnxNode[]
  initializers: Map<string, OnnxInitializer>
}

class Reader {
  pos = 0
  constructor(private readonly buf: Uint8Array) {}
  get done() {
    return this.pos >= this.buf.length
  }
  varint(): number {
    let result = 0
    let mul = 1
    for (;;) {
      if (this.pos >= this.buf.length)
        throw new GraphError('readOnnxModel: truncated protobuf (a varint runs past the end); the file is not a complete ONNX model')
      const b = this.buf[this.pos++]
      result += (b & 0x7f) * mul
      if (b < 0x80) return result
      mul *= 128
    }
  }
  /** Next field: its number, wire type, and its payload (varint or float32 value, or a sub-buffer). */
  field(): { num: number; wire: number; value: number; bytes: Uint8Array } {
    const key = this.varint()
    const num = Math.floor(key / 8)
    const wire = key & 7
    let value = 0
    let bytes: Uint8Array = new Uint8Array(0)
    if (wire === 0) value = this.varint()
    else if (wire === 1) this.pos += 8
    else if (wire === 5) {
      value = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true)
      this.pos += 4
    } else if (wire === 2) {
      const len = this.varint()
      if (this.pos + len > this.buf.length)
        throw new GraphError('readOnnxModel: truncated protobuf (a field runs past the end); the file is not a complete ONNX model')
      bytes = this.buf.subarray(this.pos, this.pos + len)
      this.pos += len
    } else throw new GraphError(`readOnnxModel: unsupported protobuf wire type ${wire}; the bytes are not an ONNX model`)
    return { num, wire, value, bytes }
  }
}

const text = (b: Uint8Array) => new TextDecoder().decode(b)

function fields(buf: Uint8Array, fn: (f: ReturnType<Reader['field']>) => void): void {
  const r = new Reader(buf)
  while (!r.done) fn(r.field())
}

function packedVarints(b: Uint8Array): number[] {
  const r = new Reader(b)
  const out: number[] = []
  while (!r.done) out.push(r.varint())
  return out
}

function readAttr(buf: Uint8Array): [string, number | number[] | string] {
  let name = ''
  let i: number | undefined
  let f: number | undefined
  let s: string | undefined
  const ints: number[] = []
  fields(buf, (x) => {
    if (x.num === 1) name = text(x.bytes)
    else if (x.num === 2) f = x.value
    else if (x.num === 3) i = x.value
    else if (x.num === 4) s = text(x.bytes)
    else if (x.num === 8) x.wire === 2 ? ints.push(...packedVarints(x.bytes)) : ints.push(x.value)
  })
  return [name, s ?? i ?? f ?? ints]
}

function readNode(buf: Uint8Array): OnnxNode {
  const n: OnnxNode = { op: '', domain: '', name: '', inputs: [], outputs: [], attrs: {} }
  fields(buf, (x) => {
    if (x.num === 1) n.inputs.push(text(x.bytes))
    else if (x.num === 2) n.outputs.push(text(x.bytes))
    else if (x.num === 3) n.name = text(x.bytes)
    else if (x.num === 4) n.op = text(x.bytes)
    else if (x.num === 7) n.domain = text(x.bytes)
    else if (x.num === 5) {
      const [k, v] = readAttr(x.bytes)
      n.attrs[k] = v
    }
  })
  return n
}

const DTYPE_OF_CODE = new Map(Object.entries(ONNX_DTYPE).map(([k, v]) => [v, k as DType]))

function readInitializer(buf: Uint8Array): OnnxInitializer {
  const t: OnnxInitializer = { name: '', dtype: null, dims: [] }
  const external: Record<string, string> = {}
  let location = 0
  fields(buf, (x) => {
    if (x.num === 1) x.wire === 2 ? t.dims.push(...packedVarints(x.bytes)) : t.dims.push(x.value)
    else if (x.num === 2) t.dtype = DTYPE_OF_CODE.get(x.value) ?? null
    else if (x.num === 8) t.name = text(x.bytes)
    else if (x.num === 9) t.raw = x.bytes
    else if (x.num === 13) {
      // StringStringEntryProto: key 1, value 2
      let key = ''
      let value = ''
      fields(x.bytes, (e) => {
        if (e.num === 1) key = text(e.bytes)
        else if (e.num === 2) value = text(e.bytes)
      })
      external[key] = value
    } else if (x.num === 14) location = x.value
  })
  if (location === 1) t.external = { location: external.location ?? '', offset: Number(external.offset ?? 0), length: Number(external.length ?? Number.NaN) }
  return t
}

/** The nodes and initializers of an ONNX model (initializer data left where it is; see onnxInitializerData). */
export function readOnnxModel(model: Uint8Array): OnnxModelContents {
  const out: OnnxModelContents = { nodes: [], initializers: new Map() }
  fields(model, (m) => {
    if (m.num !== 7) return
    fields(m.bytes, (g) => {
      if (g.num === 1) out.nodes.push(readNode(g.bytes))
      else if (g.num === 5) {
        const t = readInitializer(g.bytes)
        out.initializers.set(t.name, t)
      }
    })
  })
  return out
}

/**
 * The values of one initializer as a typed array of its dtype (float16 as its bits, Uint16Array), from
 * the model's raw bytes or from `externalData` (the data files by the location the model names). Copies,
 * so the result is aligned and independent of the model bytes.
 */
export function onnxInitializerData(t: OnnxInitializer, externalData: readonly { path: string; data: Uint8Array }[] = []): TypedArrayFor {
  if (!t.dtype) throw new GraphError(`initializer '${t.name}': an element type moas does not read`)
  const n = t.dims.reduce((a, b) => a * b, 1)
  const out = allocTyped(t.dtype, n)
  let bytes: Uint8Array
  if (t.external) {
    const file = externalData.find((f) => f.path === t.external!.location)
    if (!file) throw new GraphError(`initializer '${t.name}' is stored in '${t.external.location}', which was not given; pass that file as external data`)
    bytes = file.data.subarray(t.external.offset, t.external.offset + t.external.length)
  } else if (t.raw) bytes = t.raw
  else throw new GraphError(`initializer '${t.name}' has no raw_data (typed-field storage); moas reads raw_data and external data only`)
  if (bytes.byteLength !== out.byteLength)
    throw new GraphError(
      `initializer '${t.name}': ${bytes.byteLength} bytes for ${n} ${t.dtype} values (${out.byteLength} expected); the model or its data file is damaged`,
    )
  new Uint8Array(out.buffer).set(bytes)
  return out
}
