// The hand-written ModelProto encoder: decode the bytes back with an independent minimal protobuf reader
// (field numbers from onnx.proto), check that ONNX Runtime loads them with the same names, and that an
// inference export with embedded parameters computes what feeding the parameters computes.
import { describe, expect, it } from 'vitest'
import { GraphError } from './errors'
import { Graph, liveNodes, OPSET } from './graph'
import { initParams } from './init'
import { readOnnxModel } from './onnx-read'
import * as ops from './ops'
import { hostTensor } from './runtime'
import { IR_VERSION, serialize } from './serialize'
import { testSession } from './testing/provider'

type Field = { field: number; wire: number; value: bigint | Uint8Array }

/** Decode one protobuf message into its fields (varint, fixed32/64 and length-delimited only). */
function fields(buf: Uint8Array): Field[] {
  const out: Field[] = []
  let i = 0
  const varint = () => {
    let v = 0n
    let shift = 0n
    for (;;) {
      const b = buf[i++]
      v |= BigInt(b & 0x7f) << shift
      if (b < 0x80) return v
      shift += 7n
    }
  }
  while (i < buf.length) {
    const tag = Number(varint())
    const field = tag >> 3
    const wire = tag & 7
    if (wire === 0) out.push({ field, wire, value: varint() })
    else if (wire === 2) {
      const n = Number(varint())
      out.push({ field, wire, value: buf.subarray(i, i + n) })
      i += n
    } else if (wire === 5) {
      out.push({ field, wire, value: buf.subarray(i, i + 4) })
      i += 4
    } else if (wire === 1) {
      out.push({ field, wire, value: buf.subarray(i, i + 8) })
      i += 8
    } else throw new Error(`unexpected wire type ${wire}`)
  }
  expect(i).toBe(buf.length)
  return out
}
const all = (fs: Field[], n: number) => fs.filter((f) => f.field === n)
const one = (fs: Field[], n: number) => {
  const m = all(fs, n)
  expect(m.length, `field ${n} present once`).toBe(1)
  return m[0].value
}
const str = (v: bigint | Uint8Array) => new TextDecoder().decode(v as Uint8Array)
const msg = (v: bigint | Uint8Array) => fields(v as Uint8Array)

/** ValueInfoProto → name, elem type, dims (numbers or symbolic names), doc string. */
function valueInfo(v: Uint8Array) {
  const f = fields(v)
  const tensorType = msg(one(msg(one(f, 2)), 1)) // TypeProto.tensor_type
  const dims = all(msg(one(tensorType, 2)), 1).map((d) => {
    const df = msg(d.value)
    return df[0].field === 1 ? Number(df[0].value) : str(df[0].value)
  })
  const doc = all(f, 3)
  return { name: str(one(f, 1)), elemType: Number(one(tensorType, 1)), dims, doc: doc.length ? str(doc[0].value) : undefined }
}

function model() {
  const g = new Graph('tiny_mlp')
  const x = g.input('x', 'float32', ['batch', 4], 'features, one row per example')
  const w = g.param('fc.weight', [3, 4], { init: { kind: 'normal', std: 0.5 } })
  const b = g.param('fc.bias', [3], { init: { kind: 'normal', std: 0.5 } })
  g.scope('mlp', () => g.output('probs', ops.softmax(ops.gelu(ops.linear(x, w, b), 'tanh')), 'class probabilities'))
  return g
}

describe('ModelProto encoding', () => {
  it('decodes back to the graph: IR/opset, producer, names, types, symbolic dims, doc strings, metadata', () => {
    const g = model()
    const bytes = serialize(g, { docString: 'a tiny MLP', metadata: { 'moas.variant': 'test' } })
    const m = fields(bytes)
    expect(Number(one(m, 1))).toBe(IR_VERSION)
    expect(IR_VERSION).toBe(10)
    expect(str(one(m, 2))).toBe('moas')
    expect(str(one(m, 6))).toBe('a tiny MLP')
    const opsets = all(m, 8).map((o) => msg(o.value))
    expect(opsets.map((o) => [str(one(o, 1)), Number(one(o, 2))])).toEqual([['', 21]])
    expect(OPSET).toBe(21)
    g.opset = 23 // a graph raised for a newer op declares that opset
    expect(all(fields(serialize(g)), 8).map((o) => Number(one(msg(o.value), 2)))).toEqual([23])
    const meta = all(m, 14)
      .map((p) => msg(p.value))
      .map((p) => [str(one(p, 1)), str(one(p, 2))])
    expect(meta).toEqual([['moas.variant', 'test']])

    const graph = msg(one(m, 7))
    expect(str(one(graph, 2))).toBe('tiny_mlp')
    const inputs = all(graph, 11).map((v) => valueInfo(v.value as Uint8Array))
    expect(inputs).toEqual([
      { name: 'x', elemType: 1, dims: ['batch', 4], doc: 'features, one row per example' },
      { name: 'fc.weight', elemType: 1, dims: [3, 4], doc: undefined },
      { name: 'fc.bias', elemType: 1, dims: [3], doc: undefined },
    ])
    const outputs = all(graph, 12).map((v) => valueInfo(v.value as Uint8Array))
    expect(outputs).toEqual([{ name: 'probs', elemType: 1, dims: ['batch', 3], doc: 'class probabilities' }])
    // Nodes in order, with their scoped names, op types and attributes.
    const nodes = all(graph, 1).map((n) => msg(n.value))
    expect(nodes.map((n) => str(one(n, 4)))).toEqual(g.nodes.map((n) => n.op))
    expect(nodes.map((n) => str(one(n, 3)))).toEqual(g.nodes.map((n) => n.name))
    expect(g.nodes.some((n) => n.name.startsWith('mlp/'))).toBe(true)
    const gelu = nodes.find((n) => str(one(n, 4)) === 'Gelu')!
    const attr = msg(one(gelu, 5))
    expect([str(one(attr, 1)), str(one(attr, 4)), Number(one(attr, 20))]).toEqual(['approximate', 'tanh', 3]) // STRING
  })

  it('embeds parameters as raw little-endian initializers and drops them from the inputs', () => {
    const g = model()
    const params = initParams(g, 7)
    const graph = msg(one(fields(serialize(g, { params })), 7))
    expect(all(graph, 11).map((v) => valueInfo(v.value as Uint8Array).name)).toEqual(['x'])
    const inits = new Map(
      all(graph, 5)
        .map((t) => msg(t.value))
        .map((t) => [str(one(t, 8)), t]),
    )
    const w = inits.get('fc.weight')!
    expect(all(w, 1).map((d) => Number(d.value))).toEqual([3, 4])
    expect(Number(one(w, 2))).toBe(1) // FLOAT
    const raw = one(w, 9) as Uint8Array
    expect(Array.from(new Float32Array(raw.slice().buffer))).toEqual(Array.from(params.get('fc.weight')!))
  })

  it('refuses a parameter value of the wrong length or array type', () => {
    const g = model()
    expect(() => serialize(g, { params: new Map([['fc.bias', new Float32Array(2)]]) })).toThrow("serialize: value for 'fc.bias' has 2 elements, expected [3]")
    expect(() => serialize(g, { params: new Map([['fc.bias', new Float64Array(3)]]) })).toThrow(GraphError)
    expect(() => serialize(g, { params: new Map([['fc.bias', new Float64Array(3)]]) })).toThrow(
      "serialize: value for 'fc.bias' is a Float64Array but the parameter is float32",
    )
  })
})

describe('ONNX Runtime reads the model as written', () => {
  it('omits trailing optional inputs: Add → LayerNormalization without bias loads and runs with all optimizations', async () => {
    // Written as LayerNormalization(x, scale, '') this graph crashed ONNX Runtime 1.30 (segfault in the
    // SkipLayerNormalization fusion); the encoder now leaves the trailing empty input out.
    const g = new Graph('skip_ln')
    const x = g.input('x', 'float32', [2, 3, 4])
    const r = g.input('r', 'float32', [2, 3, 4])
    const y = ops.layerNorm(ops.add(x, r), g.param('ln.weight', [4], { init: { kind: 'ones' } }), null)
    g.output('y', y)
    const ln = all(msg(one(fields(serialize(g)), 7)), 1)
      .map((n) => msg(n.value))
      .find((n) => str(one(n, 4)) === 'LayerNormalization')!
    expect(all(ln, 1).map((f) => str(f.value))).toEqual([y.producer!.inputs[0]!.name, 'ln.weight'])
    const s = await testSession(g, { optimization: 'all' })
    const xv = Array.from({ length: 24 }, (_, i) => i % 5)
    const out = await s.run({
      x: hostTensor('float32', [2, 3, 4], xv),
      r: hostTensor(
        'float32',
        [2, 3, 4],
        xv.map((v) => v * v),
      ),
      'ln.weight': hostTensor('float32', [4], [1, 2, 1, 1]),
    })
    const row = [0, 2, 6, 12] // x + x² for the first row of x = 0, 1, 2, 3
    const mean = row.reduce((a, b) => a + b) / 4
    const sd = Math.sqrt(row.reduce((a, b) => a + (b - mean) ** 2, 0) / 4 + 1e-5)
    expect(
      Array.from(out.y.data as Float32Array)
        .slice(0, 4)
        .map((v) => +v.toFixed(5)),
    ).toEqual(row.map((v, i) => +(((v - mean) / sd) * [1, 2, 1, 1][i]).toFixed(5)))
  })

  it('leaves out constants no node reads (ONNX Runtime would warn and drop them)', () => {
    const g = model()
    g.scalar(0) // built but never used, like an unused zero loss
    const used = g.scalar(2)
    g.output('twice', ops.mul(g.inputs[0], used))
    const graphMsg = msg(one(fields(serialize(g)), 7))
    const names = all(graphMsg, 5).map((t) => str(one(msg(t.value), 8)))
    expect(names).toContain(used.name)
    expect(names).toHaveLength(g.constants.length - 1)
  })

  it('writes only the nodes that reach an output (ONNX Runtime would run the others), and their constants', async () => {
    const g = new Graph('dead')
    const x = g.input('x', 'float32', [2, 3])
    const onlyDead = g.input('unused', 'float32', [2]) // read only by dead nodes: stays a declared input
    const deadScale = g.scalar(5)
    ops.exp(ops.mul(ops.slice(x, [0], [1], [0]), deadScale)) // computed, never used
    ops.add(onlyDead, 1)
    g.output('y', ops.mul(x, 2))
    const written = readOnnxModel(serialize(g))
    expect(written.nodes.map((n) => n.op)).toEqual(['Mul', 'Identity']) // Identity names the output
    expect([...written.initializers.keys()]).not.toContain(deadScale.name)
    expect(liveNodes(g).map((n) => n.op)).toEqual(['Mul', 'Identity'])
    const s = await testSession(g)
    expect(s.inputNames).toEqual(['x', 'unused'])
    const out = await s.run({ x: hostTensor('float32', [2, 3], [1, 2, 3, 4, 5, 6]), unused: hostTensor('float32', [2], [0, 0]) })
    expect(Array.from(out.y.data as Float32Array)).toEqual([2, 4, 6, 8, 10, 12])
  })

  it('reports the same input and output names', async () => {
    const s = await testSession(model())
    expect(s.inputNames).toEqual(['x', 'fc.weight', 'fc.bias'])
    expect(s.outputNames).toEqual(['probs'])
  })

  it('an inference export with embedded parameters gives the outputs of feeding them', async () => {
    const g = model()
    const params = initParams(g, 3)
    const x = hostTensor(
      'float32',
      [5, 4],
      Array.from({ length: 20 }, (_, i) => Math.sin(i)),
    )
    const fed = await (await testSession(g)).run({
      x,
      'fc.weight': hostTensor('float32', [3, 4], params.get('fc.weight')!),
      'fc.bias': hostTensor('float32', [3], params.get('fc.bias')!),
    })
    const exported = serialize(g, { params })
    const s = await testSession(exported)
    expect(s.inputNames).toEqual(['x'])
    const embedded = await s.run({ x })
    expect(embedded.probs.shape).toEqual([5, 3])
    expect(Array.from(embedded.probs.data as Float32Array)).toEqual(Array.from(fed.probs.data as Float32Array))
    // And the parameters matter: other values give other outputs.
    const other = await (await testSession(serialize(g, { params: initParams(g, 4) }))).run({ x })
    expect(Array.from(other.probs.data as Float32Array)).not.toEqual(Array.from(fed.probs.data as Float32Array))
  })
})
