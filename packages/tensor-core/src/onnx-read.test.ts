import { describe, expect, it } from 'vitest'
import { float16Bits } from './dtype'
import { GraphError } from './errors'
import { Graph } from './graph'
import { onnxInitializerData, readOnnxModel } from './onnx-read'
import * as ops from './ops'
import { serialize, serializeWithExternalData } from './serialize'

function twoParamGraph() {
  const g = new Graph('read-back')
  const x = g.input('x', 'float32', [2, 3])
  const w = g.param('w', [3, 4], { init: { kind: 'zeros' } })
  const h = g.param('h', [4], { init: { kind: 'zeros' }, dtype: 'float16' })
  g.output('y', ops.add(ops.matmul(x, w), ops.cast(h, 'float32')))
  const params = new Map<string, Float32Array | Uint16Array>([
    ['w', Float32Array.from({ length: 12 }, (_, i) => i / 7 - 0.5)],
    ['h', float16Bits([0.5, -1, 2.25, 65504])],
  ])
  return { g, params }
}

describe('readOnnxModel', () => {
  it('reads back the nodes and the embedded initializers serialize wrote, values bit for bit', () => {
    const { g, params } = twoParamGraph()
    const model = readOnnxModel(serialize(g, { params }))
    expect(model.nodes.map((n) => n.op)).toEqual(g.nodes.map((n) => n.op))
    const w = model.initializers.get('w')!
    expect([w.dtype, w.dims]).toEqual(['float32', [3, 4]])
    expect(onnxInitializerData(w)).toEqual(params.get('w'))
    const h = model.initializers.get('h')!
    expect([h.dtype, h.dims]).toEqual(['float16', [4]])
    expect(onnxInitializerData(h)).toEqual(params.get('h'))
  })

  it('reads initializers stored as external data from the data file the model names', () => {
    const { g, params } = twoParamGraph()
    const { model, data, location } = serializeWithExternalData(g, { params, externalDataFile: 'weights.bin' })
    const w = readOnnxModel(model).initializers.get('w')!
    expect(w.raw).toBeUndefined()
    expect(w.external).toMatchObject({ location: 'weights.bin', length: 48 })
    expect(onnxInitializerData(w, [{ path: location, data }])).toEqual(params.get('w'))
    expect(() => onnxInitializerData(w)).toThrow(/stored in 'weights.bin', which was not given/)
    expect(() => onnxInitializerData(w, [{ path: location, data: data.subarray(0, 10) }])).toThrow(/bytes for 12 float32 values.*damaged/)
  })

  it('refuses truncated bytes with a GraphError, not a RangeError', () => {
    const { g, params } = twoParamGraph()
    const bytes = serialize(g, { params })
    expect(() => readOnnxModel(bytes.subarray(0, bytes.length - 7))).toThrow(GraphError)
  })
})
