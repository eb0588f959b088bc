import { Graph, type HostTensor, hostTensor, Session } from '@moas/tensor-core'
import { gradcheck, randHost } from '@moas/tensor-core/testing'
import { describe, expect, it } from 'vitest'
import { type GroupedAttentionConfig, groupedAttention } from './scheme'

// d = 4: ONNX Runtime folds the 1/sqrt(d) scale into FusedMatMul's float32 alpha, so float64 checks need an exactly
// representable scale (1/sqrt(2) would cost ~1e-8 relative).
const base = { nEmbd: 16, nHead: 4, nLayer: 3, bias: false, dropout: 0 }

/** Random values for every parameter of g (std 0.3 so attention is far from uniform). */
function paramFeeds(g: Graph, seed: number): Record<string, HostTensor> {
  return Object.fromEntries(g.params.map((p, i) => [p.tensor.name, randHost(p.tensor.dtype as 'float64', p.tensor.shape as number[], seed + i, 0.3)]))
}

function build(cfg: GroupedAttentionConfig, prefix = 'attn.', dims: [number | string, number | string] = ['batch', 'seq']) {
  const g = new Graph('scheme')
  const x = g.input('x', 'float64', [dims[0], dims[1], cfg.nEmbd])
  const y = groupedAttention(x, cfg, prefix, { training: false })
  return { g, x, y }
}

async function run(cfg: GroupedAttentionConfig, feeds: Record<string, HostTensor>, prefix = 'attn.'): Promise<Float64Array> {
  const { g, y } = build(cfg, prefix)
  g.output('y', y)
  return (await (await Session.create(g)).run(feeds)).y.data as Float64Array
}

const rows = (w: HostTensor) => w.data as Float64Array
const linear = (x: Float64Array, n: number, w: Float64Array, out: number, inp: number, b?: Float64Array) => {
  const y = new Float64Array(n * out)
  for (let i = 0; i < n; i++)
    for (let o = 0; o < out; o++) {
      let s = b ? b[o] : 0
      for (let c = 0; c < inp; c++) s += x[i * inp + c] * w[o * inp + c]
      y[i * out + o] = s
    }
  return y
}

/** Plain-JS grouped attention block (no dropout), independent of the graph code's reshapes. */
function referenceBlock(cfg: GroupedAttentionConfig, X: Float64Array, B: number, T: number, p: Record<string, HostTensor>): Float64Array {
  const { nEmbd: C, nHead: H, nKvHead: G } = cfg
  const d = C / H,
    R = H / G,
    N = B * T
  const q = linear(X, N, rows(p['attn.q_proj.weight']), C, C, p['attn.q_proj.bias'] && rows(p['attn.q_proj.bias']))
  const k = linear(X, N, rows(p['attn.k_proj.weight']), G * d, C, p['attn.k_proj.bias'] && rows(p['attn.k_proj.bias']))
  const v = linear(X, N, rows(p['attn.v_proj.weight']), G * d, C, p['attn.v_proj.bias'] && rows(p['attn.v_proj.bias']))
  const att = new Float64Array(N * C)
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < T; i++) {
        const kv = Math.floor(h / R)
        const s = Array.from({ length: i + 1 }, (_, j) => {
          let dot = 0
          for (let c = 0; c < d; c++) dot += q[(b * T + i) * C + h * d + c] * k[(b * T + j) * G * d + kv * d + c]
          return dot / Math.sqrt(d)
        })
        const m = Math.max(...s)
        const e = s.map((z) => Math.exp(z - m))
        const sum = e.reduce((a, z) => a + z, 0)
        for (let j = 0; j <= i; j++) for (let c = 0; c < d; c++) att[(b * T + i) * C + h * d + c] += (e[j] / sum) * v[(b * T + j) * G * d + kv * d + c]
      }
  return linear(att, N, rows(p['attn.c_proj.weight']), C, C, p['attn.c_proj.bias'] && rows(p['attn.c_proj.bias']))
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length)
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]))
  return m
}

describe('groupedAttention parameters', () => {
  it('mha (fusedQkv) names c_attn [3C,C] and c_proj [C,C] under the prefix, nanoGPT init', () => {
    const { g } = build({ ...base, nKvHead: 4, fusedQkv: true }, 'transformer.h.0.attn.')
    expect(g.params.map((p) => [p.tensor.name, p.tensor.shape, p.init])).toEqual([
      ['transformer.h.0.attn.c_attn.weight', [48, 16], { kind: 'normal', std: 0.02 }],
      ['transformer.h.0.attn.c_proj.weight', [16, 16], { kind: 'normal', std: 0.02 / Math.sqrt(6) }],
    ])
  })

  it('gqa names q_proj [C,C], k_proj/v_proj [G*d,C], c_proj, and zero-initialized biases when bias', () => {
    const { g } = build({ ...base, nKvHead: 2, bias: true }, 'h.1.attn.gqa.')
    expect(g.params.map((p) => [p.tensor.name, p.tensor.shape, p.init.kind, p.decay])).toEqual([
      ['h.1.attn.gqa.q_proj.weight', [16, 16], 'normal', true],
      ['h.1.attn.gqa.q_proj.bias', [16], 'zeros', false],
      ['h.1.attn.gqa.k_proj.weight', [8, 16], 'normal', true],
      ['h.1.attn.gqa.k_proj.bias', [8], 'zeros', false],
      ['h.1.attn.gqa.v_proj.weight', [8, 16], 'normal', true],
      ['h.1.attn.gqa.v_proj.bias', [8], 'zeros', false],
      ['h.1.attn.gqa.c_proj.weight', [16, 16], 'normal', true],
      ['h.1.attn.gqa.c_proj.bias', [16], 'zeros', false],
    ])
  })

  it('rejects invalid configs with the fix in the message', () => {
    const g = new Graph('bad')
    const x = g.input('x', 'float32', [1, 4, 16])
    expect(() => groupedAttention(x, { ...base, nHead: 3, nKvHead: 1 }, 'a.', { training: false })).toThrow(/nEmbd 16 is not divisible by nHead 3/)
    expect(() => groupedAttention(x, { ...base, nKvHead: 3 }, 'a.', { training: false })).toThrow(/nHead 4 is not divisible by nKvHead 3/)
    expect(() => groupedAttention(x, { ...base, nKvHead: 2, fusedQkv: true }, 'a.', { training: false })).toThrow(/fusedQkv/)
    expect(() => groupedAttention(x, { ...base, nKvHead: 0 }, 'a.', { training: false })).toThrow(/nKvHead must be a positive integer/)
    expect(() => groupedAttention(x, { ...base, nEmbd: 32, nKvHead: 4 }, 'a.', { training: false })).toThrow(/expects x \[B, T, 32\]/)
  })
})

describe('groupedAttention numerics', () => {
  for (const [name, G, bias] of [
    ['gqa', 2, true],
    ['mqa', 1, false],
    ['mha-unfused', 4, false],
  ] as const) {
    it(`${name}: matches a plain-JS block (query head h reads KV head h / (H/G))`, async () => {
      const cfg = { ...base, nKvHead: G, bias }
      const [B, T] = [2, 5]
      const { g } = build(cfg)
      const feeds = { x: randHost('float64', [B, T, base.nEmbd], 1), ...paramFeeds(g, 10) }
      const y = await run(cfg, feeds)
      expect(maxAbsDiff(y, referenceBlock(cfg, feeds.x.data as Float64Array, B, T, feeds))).toBeLessThan(1e-12)
    })
  }

  it('gqa with nKvHead = nHead equals the fused mha given the same (re-stacked) weights', async () => {
    const gqaCfg = { ...base, nKvHead: 4, bias: true }
    const { g } = build(gqaCfg)
    const p = paramFeeds(g, 20)
    const C = base.nEmbd
    const x = randHost('float64', [3, 6, C], 2)
    const stack = (parts: string[], shape: number[]) =>
      hostTensor('float64', shape, Float64Array.from(parts.flatMap((n) => Array.from(p[n].data as Float64Array))))
    const mhaFeeds = {
      x,
      'attn.c_attn.weight': stack(['attn.q_proj.weight', 'attn.k_proj.weight', 'attn.v_proj.weight'], [3 * C, C]),
      'attn.c_attn.bias': stack(['attn.q_proj.bias', 'attn.k_proj.bias', 'attn.v_proj.bias'], [3 * C]),
      'attn.c_proj.weight': p['attn.c_proj.weight'],
      'attn.c_proj.bias': p['attn.c_proj.bias'],
    }
    const yGqa = await run(gqaCfg, { x, ...p })
    const yMha = await run({ ...gqaCfg, fusedQkv: true }, mhaFeeds)
    expect(maxAbsDiff(yGqa, yMha)).toBeLessThan(1e-12)
  })

  it('is causal: changing a future token never changes earlier outputs', async () => {
    for (const cfg of [
      { ...base, nKvHead: 4, fusedQkv: true },
      { ...base, nKvHead: 2 },
      { ...base, nKvHead: 1 },
    ]) {
      const { g } = build(cfg)
      const p = paramFeeds(g, 30)
      const [B, T, C] = [2, 7, base.nEmbd]
      const x = randHost('float64', [B, T, C], 3)
      const changed = hostTensor('float64', [B, T, C], Float64Array.from(x.data as Float64Array))
      const t0 = 4
      for (let b = 0; b < B; b++) for (let c = 0; c < C; c++) (changed.data as Float64Array)[(b * T + t0) * C + c] += 1
      const y1 = await run(cfg, { x, ...p })
      const y2 = await run(cfg, { x: changed, ...p })
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++) {
          const row = (y: Float64Array) => y.subarray((b * T + t) * C, (b * T + t + 1) * C)
          const diff = maxAbsDiff(row(y1), row(y2))
          if (t < t0) expect(diff).toBe(0)
          else expect(diff).toBeGreaterThan(1e-6)
        }
    }
  })

  for (const [name, cfg] of [
    ['mha (fused, bias)', { ...base, nKvHead: 4, fusedQkv: true, bias: true }],
    ['gqa (bias)', { ...base, nKvHead: 2, bias: true }],
    ['mqa', { ...base, nKvHead: 1 }],
  ] as const) {
    it(`${name}: gradients of x and every parameter match finite differences`, async () => {
      const [B, T] = [2, 4]
      const shapes = build(cfg, 'attn.', [B, T]).g // parameter shapes, for the fixed (std 0.3) parameter values
      const res = await gradcheck(
        (g) => {
          const x = g.input('x', 'float64', [B, T, base.nEmbd])
          return groupedAttention(x, cfg, 'attn.', { training: false })
          // floor 1e-5: the key bias has an exactly zero gradient (softmax ignores a shift shared by every key), so
          // tiny gradients are held to an absolute 1e-11 instead of a relative error of rounding noise.
        },
        { feeds: paramFeeds(shapes, 40), maxPerTensor: 40, floor: 1e-5 },
      )
      expect(res.ok, res.summary).toBe(true)
      expect(res.tensors.map((t) => t.name)).toEqual(['x', ...shapes.paramNames()])
    })
  }

  it('in training adds attention dropout on the probabilities and residual dropout on the output', () => {
    const g = new Graph('drop')
    g.dropoutNoise = true
    const x = g.input('x', 'float32', [2, 5, 16])
    groupedAttention(x, { ...base, nKvHead: 2, dropout: 0.1 }, 'a.', { training: true })
    expect(g.dropoutMasks.map((m) => m.input.shape)).toEqual([
      [2, 2, 2, 5, 5],
      [2, 5, 16],
    ])
  })
})
