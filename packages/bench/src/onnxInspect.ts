/**
 * Reads back the nodes of an ONNX model (e.g. the optimized graph ONNX Runtime writes to
 * `optimizedModelPath`) to see what it fused: op counts, and each node's inputs, outputs and attributes.
 * A minimal protobuf reader for the few ModelProto fields this needs; initializer data is skipped.
 */

export interface OnnxNode {
  op: string
  domain: string
  name: string
  inputs: string[]
  outputs: string[]
  attrs: Record<string, number | number[] | string>
}

export interface OnnxGraphSummary {
  nodes: OnnxNode[]
  /** Initializer name → dims (constant-folded tensors show up here). */
  initializers: Map<string, number[]>
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
      const b = this.buf[this.pos++]
      result += (b & 0x7f) * mul
      if (b < 0x80) return result
      mul *= 128
    }
  }
  /** Next field: its number, wire type, and its payload (varint value or a sub-buffer). */
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
      bytes = this.buf.subarray(this.pos, this.pos + len)
      this.pos += len
    } else throw new Error(`onnxInspect: unsupported wire type ${wire}`)
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

function readInitializer(buf: Uint8Array): [string, number[]] {
  let name = ''
  const dims: number[] = []
  fields(buf, (x) => {
    if (x.num === 1) x.wire === 2 ? dims.push(...packedVarints(x.bytes)) : dims.push(x.value)
    else if (x.num === 8) name = text(x.bytes)
  })
  return [name, dims]
}

export function readOnnxGraph(model: Uint8Array): OnnxGraphSummary {
  const out: OnnxGraphSummary = { nodes: [], initializers: new Map() }
  fields(model, (m) => {
    if (m.num !== 7) return
    fields(m.bytes, (g) => {
      if (g.num === 1) out.nodes.push(readNode(g.bytes))
      else if (g.num === 5) out.initializers.set(...readInitializer(g.bytes))
    })
  })
  return out
}

/** `FusedMatMul×24 Mul×40 ...`, most frequent first. */
export function opCounts(nodes: readonly OnnxNode[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const n of nodes) {
    const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.op}` : n.op
    counts[key] = (counts[key] ?? 0) + 1
  }
  return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1]))
}
