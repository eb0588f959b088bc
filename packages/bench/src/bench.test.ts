// Correctness of what the benchmarks count and compare (never their timings): FLOP counting, statistics,
// the ONNX reader, and that the hand-written MatMul-only graph computes the gradients autodiff computes.
import { describe, expect, it } from 'vitest'
import { Graph, Session, grad, hostTensor, ops, serialize } from '@moas/tensor-core'
import { matmulFlops, resolveDim } from './flops'
import { buildMatMulOnlyGraph, buildMlpStepGraph } from './mlpStep'
import { opCounts, readOnnxGraph } from './onnxInspect'
import { summarize } from './stats'

const small = { rows: 6, width: 4, hidden: 5, blocks: 2 }

describe('matmulFlops', () => {
  it('counts 2·m·n·k per MatMul, batch dims included, and binds symbolic dims', () => {
    const g = new Graph('f')
    const a = g.input('a', 'float32', ['batch', 3, 4])
    const b = g.input('b', 'float32', [4, 5])
    const c = g.input('c', 'float32', ['batch', 5, 7])
    g.output('y', ops.matmul(ops.matmul(a, b), c))
    expect(matmulFlops(g, { batch: 2 })).toBe(2 * (2 * 3 * 5 * 4) + 2 * (2 * 3 * 7 * 5))
    expect(() => matmulFlops(g)).toThrow(/symbolic dim 'batch'.*pass it in dims/)
  })

  it('ignores MatMuls that reach no output', () => {
    const g = new Graph('dead')
    const a = g.input('a', 'float32', [3, 4])
    const b = g.input('b', 'float32', [4, 5])
    ops.matmul(a, b) // unused
    g.output('y', ops.matmul(a, ops.transpose(a, [1, 0])))
    expect(matmulFlops(g)).toBe(2 * 3 * 3 * 4)
  })

  it('resolves products of symbolic dims', () => {
    expect(resolveDim('12*batch*seq', { batch: 2, seq: 3 })).toBe(72)
  })

  it('credits the generated step and the MatMul-only graph with the same GEMMs', () => {
    const step = buildMlpStepGraph(small)
    const base = buildMatMulOnlyGraph(small)
    const perLayer = 2 * small.rows * small.width * small.hidden
    // 2·blocks forward, 2·blocks weight gradients, 2·blocks − 1 input gradients (x is data).
    const gemms = 2 * small.blocks * 3 - 1
    expect(matmulFlops(base)).toBe(gemms * perLayer)
    expect(matmulFlops(step)).toBe(gemms * perLayer)
  })
})

describe('the MatMul-only baseline', () => {
  it('computes the weight gradients that autodiff computes for the same linear stack (no GELU)', async () => {
    const cfg = small
    const base = buildMatMulOnlyGraph(cfg)
    // The same stack through autodiff: loss = Σ y ⊙ c.
    const g = new Graph('ref')
    let h = g.input('x', 'float32', [cfg.rows, cfg.width])
    const cot = g.input('cotangent', 'float32', [cfg.rows, cfg.width])
    const ws = Array.from({ length: 2 * cfg.blocks }, (_, l) => g.param(`w${l}`, l % 2 ? [cfg.width, cfg.hidden] : [cfg.hidden, cfg.width], { init: { kind: 'zeros' } }))
    for (const w of ws) h = ops.linear(h, w)
    grad(ops.reduceSum(ops.mul(h, cot), [0, 1]), ws).forEach((gw, l) => g.output(`dw${l}`, gw))

    let seed = 7
    const rnd = (n: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 16807) % 2147483647) / 2147483647 - 0.5))
    const feeds: Record<string, ReturnType<typeof hostTensor>> = {
      x: hostTensor('float32', [cfg.rows, cfg.width], rnd(cfg.rows * cfg.width)),
      cotangent: hostTensor('float32', [cfg.rows, cfg.width], rnd(cfg.rows * cfg.width)),
    }
    ws.forEach((w, l) => (feeds[`w${l}`] = hostTensor('float32', w.shape as number[], rnd(w.shape[0] as number * (w.shape[1] as number)))))
    const want = await (await Session.create(g)).run(feeds)
    const got = await (await Session.create(base)).run(feeds)
    for (let l = 0; l < ws.length; l++) {
      const a = Array.from(got[`dw${l}`].data as Float32Array)
      const b = Array.from(want[`dw${l}`].data as Float32Array)
      expect(got[`dw${l}`].shape).toEqual(want[`dw${l}`].shape)
      a.forEach((v, i) => expect(v).toBeCloseTo(b[i], 5))
      expect(Math.max(...b.map(Math.abs))).toBeGreaterThan(0)
    }
  })
})

describe('readOnnxGraph', () => {
  it('reads back the nodes and attributes tensor-core serialized', () => {
    const g = new Graph('r')
    const x = g.input('x', 'float32', [2, 3])
    g.output('y', ops.softmax(ops.transpose(x, [1, 0]), -1))
    const nodes = readOnnxGraph(serialize(g)).nodes
    expect(opCounts(nodes)).toEqual({ Transpose: 1, Softmax: 1, Identity: 1 })
    expect(nodes.find((n) => n.op === 'Transpose')!.attrs.perm).toEqual([1, 0])
    expect(nodes.find((n) => n.op === 'Softmax')!.attrs.axis).toBe(1)
    expect(nodes.at(-1)!.outputs).toEqual(['y'])
  })
})

describe('summarize', () => {
  it('gives median, extremes and the interquartile range', () => {
    const t = summarize([5, 1, 4, 2, 3])
    expect([t.median, t.min, t.max, t.iqr]).toEqual([3, 1, 5, 2])
    expect(summarize([1, 2, 3, 10]).median).toBe(2.5)
    expect(() => summarize([])).toThrow(/no samples/)
  })
})

describe('decode bench', () => {
  it('measures every requested row and reads the cache bytes off the present tensors', async () => {
    const { runDecode } = await import('./decode')
    const model = { vocab_size: 20, block_size: 16, n_layer: 1, n_head: 4, n_embd: 16, n_kv_head: 2, dropout: 0, bias: false, balance_weight: 0.01 }
    const r = await runDecode({ settings: [{ name: 'tiny', model, variants: ['mha', 'moas', 'gqe'], contexts: [6, 12], batches: [1, 3] }], steps: 2, warmup: 1, recomputeReps: 1, threads: 1 })
    expect(r.rows.map((row) => `${row.variant}/${row.batch}/${row.context}`)).toEqual(['mha', 'moas', 'gqe'].flatMap((v) => [`${v}/1/6`, `${v}/1/12`, `${v}/3/6`, `${v}/3/12`]))
    for (const row of r.rows) {
      expect(row.kvBytesPerToken).toBe(row.kvBytesPerTokenModel)
      expect(row.step.samples).toHaveLength(2)
      expect(row.recompute === null).toBe(row.batch !== 1)
    }
  })
})
