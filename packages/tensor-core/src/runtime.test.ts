// Execution providers by name in Node: the requested one or a clear error (never a silent fallback), and the
// same graph giving the same numbers on onnxruntime-node (cpu) and onnxruntime-web (wasm) in one process.
import { describe, expect, it } from 'vitest'
import { grad } from './autodiff'
import type { DType } from './dtype'
import { RuntimeError } from './errors'
import { Graph, type Tensor } from './graph'
import { initParams, mulberry32 } from './init'
import * as ops from './ops'
import { adamw, adamwScalars } from './optim'
import { type HostTensor, hostTensor, Session } from './runtime'

const rejected = async (p: Promise<unknown>): Promise<Error> => {
  try {
    await p
  } catch (e) {
    return e as Error
  }
  throw new Error('expected a rejection')
}
const tiny = () => {
  const g = new Graph('tiny')
  g.output('y', ops.exp(g.input('x', 'float32', [3])))
  return g
}

describe('execution providers in Node', () => {
  it('an unknown name lists the known ones', async () => {
    const e = await rejected(Session.create(tiny(), { provider: 'tpu' as never }))
    expect(e).toBeInstanceOf(RuntimeError)
    expect(e.message).toBe("unknown execution provider 'tpu'; choose one of cpu, cuda, webgpu, wasm")
  })

  // cuda and webgpu work where the hardware and libraries are: these tests accept that, and otherwise check
  // the error (never a silent fallback to cpu).
  it("'cuda': runs, or says what is missing and how to get it", async () => {
    const s = await Session.create(tiny(), { provider: 'cuda' }).catch((e: Error) => e)
    if (!(s instanceof Error)) return expect(s.provider).toBe('cuda')
    expect(s).toBeInstanceOf(RuntimeError)
    expect(s.message).toMatch(
      /^execution provider 'cuda' is not available here \(.+\)\. The CUDA provider needs an NVIDIA GPU, CUDA 12 and onnxruntime-node's CUDA libraries, .*ONNXRUNTIME_NODE_INSTALL=cuda12 node script\/install\.js/,
    )
  })

  it("'webgpu': runs, or says what is missing (no fallback to cpu)", async () => {
    const s = await Session.create(tiny(), { provider: 'webgpu' }).catch((e: Error) => e)
    if (!(s instanceof Error)) return expect(s.provider).toBe('webgpu')
    expect(s).toBeInstanceOf(RuntimeError)
    expect(s.message).toMatch(/^execution provider 'webgpu' is not available here \(.+\)\. WebGPU needs a GPU adapter: in Node, libvulkan and a Vulkan driver/)
  })

  // Device outputs (WebGPU buffers) run in the browser tests (apps/web); here: what is refused, and why.
  it('deviceOutputs: refused on host providers, and for names that are not outputs', async () => {
    for (const provider of ['cpu', 'wasm', 'cuda'] as const) {
      const e = await rejected(Session.create(tiny(), { provider, deviceOutputs: ['y'] }))
      expect(e).toBeInstanceOf(RuntimeError)
      expect(e.message).toMatch(new RegExp(`^deviceOutputs needs the webgpu provider, not '${provider}': .*leave deviceOutputs empty$`))
    }
    const e = await rejected(Session.create(tiny(), { provider: 'webgpu', deviceOutputs: ['y', 'z'] }))
    expect(e.message).toBe('deviceOutputs names z, not outputs of the graph (its outputs: y)')
  })

  for (const provider of ['cpu', 'wasm'] as const) {
    it(`'${provider}' runs and reports itself`, async () => {
      const s = await Session.create(tiny(), { provider })
      expect(s.provider).toBe(provider)
      const out = await s.run({ x: hostTensor('float32', [3], [0, 1, -1]) })
      expect(Array.from(out.y.data as Float32Array)).toEqual([1, Math.fround(Math.E), Math.fround(Math.exp(-1))])
      const split = await s.runOnDevice({ x: hostTensor('float32', [3], [0, 1, -1]) })
      expect(Object.keys(split.device)).toEqual([]) // host providers hand every output back to JS
      expect(Array.from(split.host.y.data as Float32Array)).toEqual(Array.from(out.y.data as Float32Array))
    })
  }
})

/**
 * One training step of a small transformer-like model with caller-fed dropout noise: forward, backward and
 * AdamW in one graph. Every output (loss, gradient norm, new parameters and moments) is compared.
 */
function trainingStep(dtype: DType) {
  const [B, T, C, H, V] = [2, 5, 8, 2, 11]
  const D = C / H
  const g = new Graph('step')
  g.dropoutNoise = true
  const p = (name: string, shape: number[], std = 0.3) => g.param(name, shape, { init: std ? { kind: 'normal', std } : { kind: 'ones' }, dtype })
  const idx = g.input('idx', 'int64', [B, T])
  const targets = g.input('targets', 'int64', [B * T])
  const x = ops.add(ops.gather(p('wte.weight', [V, C]), idx), p('wpe.weight', [T, C]))
  const h = ops.layerNorm(x, p('ln_1.weight', [C], 0), null)
  const heads = (t: Tensor) => ops.transpose(ops.reshape(t, [B, T, H, D]), [0, 2, 1, 3])
  const [q, k, v] = ops.split(ops.linear(h, p('c_attn.weight', [3 * C, C])), [C, C, C], -1).map(heads)
  const att = ops.softmax(ops.add(ops.mul(ops.matmul(q, ops.transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(D)), ops.causalMask(x, T)))
  const y = ops.reshape(ops.transpose(ops.matmul(ops.dropout(att, 0.1, true), v), [0, 2, 1, 3]), [B, T, C])
  const x1 = ops.add(x, ops.linear(y, p('c_proj.weight', [C, C])))
  const m = ops.linear(
    ops.gelu(ops.linear(ops.layerNorm(x1, p('ln_2.weight', [C], 0), null), p('c_fc.weight', [4 * C, C])), 'tanh'),
    p('mlp.c_proj.weight', [C, 4 * C]),
  )
  const x2 = ops.add(x1, ops.dropout(m, 0.1, true))
  const logits = ops.linear(x2, p('lm_head.weight', [V, C]))
  const loss = g.output('loss', ops.crossEntropy(ops.reshape(logits, [B * T, V]), targets))
  adamw(
    g,
    g.params,
    grad(
      loss,
      g.params.map((q) => q.tensor),
    ),
    { weightDecay: 0.1, clipNorm: 1 },
  )
  // Feeds: parameters, zero moments, tokens, noise.
  const rand = mulberry32(5)
  const feeds: Record<string, HostTensor> = {}
  for (const [name, value] of initParams(g, 11)) {
    const shape = g.params.find((q) => q.tensor.name === name)!.tensor.shape as number[]
    feeds[name] = hostTensor(dtype, shape, value)
    feeds[`adam.m.${name}`] = hostTensor(dtype, shape)
    feeds[`adam.v.${name}`] = hostTensor(dtype, shape)
  }
  feeds.idx = hostTensor(
    'int64',
    [B, T],
    Array.from({ length: B * T }, () => Math.floor(rand() * V)),
  )
  feeds.targets = hostTensor(
    'int64',
    [B * T],
    Array.from({ length: B * T }, () => Math.floor(rand() * V)),
  )
  for (const { input, threshold } of g.dropoutMasks)
    feeds[input.name] = hostTensor(
      'bool',
      input.shape as number[],
      Array.from({ length: input.shape.reduce((a: number, b) => a * (b as number), 1) }, () => (Math.floor(rand() * 65536) >= threshold ? 1 : 0)),
    )
  const sc = adamwScalars(1, 1e-2)
  Object.assign(feeds, {
    lr: hostTensor(dtype, [], [sc.lr]),
    bias_correction1: hostTensor(dtype, [], [sc.biasCorrection1]),
    bias_correction2: hostTensor(dtype, [], [sc.biasCorrection2]),
  })
  return { g, feeds }
}

describe('the same graph on onnxruntime-node (cpu) and onnxruntime-web (wasm)', () => {
  for (const [dtype, tol] of [
    ['float32', 1e-5],
    ['float64', 1e-12],
  ] as const) {
    it(`${dtype}: a full training step agrees to ${tol} (relative to max(1, |value|))`, async () => {
      const { g, feeds } = trainingStep(dtype)
      const cpu = await (await Session.create(g, { provider: 'cpu' })).run(feeds)
      const wasm = await (await Session.create(g, { provider: 'wasm' })).run(feeds)
      expect(Object.keys(wasm).sort()).toEqual(Object.keys(cpu).sort())
      expect(Object.keys(cpu).length).toBe(2 + 3 * g.params.length)
      let maxErr = 0
      let worst = ''
      for (const [name, t] of Object.entries(cpu)) {
        const a = t.data as Float32Array
        const b = wasm[name].data as Float32Array
        expect(wasm[name].shape).toEqual(t.shape)
        for (let i = 0; i < a.length; i++) {
          const err = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(a[i]))
          if (err > maxErr) [maxErr, worst] = [err, `${name}[${i}]: cpu ${a[i]} vs wasm ${b[i]}`]
        }
      }
      expect(maxErr, worst).toBeLessThan(tol)
      // The step really moved the parameters (the comparison is not between two copies of the input).
      expect(Number(cpu.loss.data[0])).toBeGreaterThan(1)
      expect(cpu['next.c_fc.weight'].data[0]).not.toBe(feeds['c_fc.weight'].data[0])
    })
  }
})

describe('ops.sliceAt', () => {
  it('slices with bounds computed at run time (the last n positions of a symbolic axis)', async () => {
    const g = new Graph('slice-at')
    const x = g.input('x', 'float32', [2, 'seq'])
    const n = g.input('n', 'int64', [])
    const end = ops.dimOf(x, 1)
    g.output('y', ops.sliceAt(x, ops.sub(end, n), end, 1, 'n'))
    const s = await Session.create(g)
    const y = (await s.run({ x: hostTensor('float32', [2, 4], [0, 1, 2, 3, 4, 5, 6, 7]), n: hostTensor('int64', [], [2]) })).y
    expect(y.shape).toEqual([2, 2])
    expect(Array.from(y.data as Float32Array)).toEqual([2, 3, 6, 7])
    expect(() => ops.sliceAt(x, g.scalar(0, 'int32'), end, 1, 'n')).toThrow(/bounds must be int64 scalars/)
  })
})
