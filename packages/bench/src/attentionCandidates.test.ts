// The measured attention-core candidates compute what the composed reference computes (the bench times
// them; this checks they are the same attention, so the timings compare like with like).
import { fileURLToPath } from 'node:url'
import { causalAttention, composedAttention, useAttentionKernel } from '@moas/attention-schemes'
import { Graph, type HostTensor, hostTensor, randomNormal, Session } from '@moas/tensor-core'
import { describe, expect, it } from 'vitest'
import { CANDIDATE_KERNELS, candidateKernel } from './attentionCandidates'

const [B, G, R, T, d] = [2, 2, 3, 48, 8]

async function attend(kernel: typeof composedAttention, feeds: Record<string, HostTensor>): Promise<{ y: Float32Array; ops: string[] }> {
  const g = new Graph('candidate')
  useAttentionKernel(g, kernel)
  const q = g.input('q', 'float32', [B, G, R, T, d])
  const k = g.input('k', 'float32', [B, G, 1, T, d])
  const v = g.input('v', 'float32', [B, G, 1, T, d])
  g.output('y', causalAttention(q, k, v, { dropout: 0, training: false }))
  const s = await Session.create(g, { threads: 1 })
  const out = (await s.run(feeds)).y.data as Float32Array
  await s.release()
  return { y: out, ops: g.nodes.map((n) => n.op) }
}

// What each candidate must be made of (so a fallback to the composed path would fail here).
const SIGNATURE: Record<string, (ops: string[]) => boolean> = {
  'gqa-naive': (o) => o.includes('GroupQueryAttention') && !o.includes('Softmax'),
  'onnx-attention': (o) => o.includes('Attention') && !o.includes('Softmax'),
  'query-blocked': (o) => o.filter((x) => x === 'Softmax').length === T / 16,
  'tiled-online': (o) => !o.includes('Softmax') && o.filter((x) => x === 'MatMul').length === (2 * ((T / 16) * (T / 16 + 1))) / 2,
}

describe('attention-core candidates', () => {
  const feeds = {
    q: hostTensor('float32', [B, G, R, T, d], randomNormal(B * G * R * T * d, 1, 1)),
    k: hostTensor('float32', [B, G, 1, T, d], randomNormal(B * G * T * d, 2, 1)),
    v: hostTensor('float32', [B, G, 1, T, d], randomNormal(B * G * T * d, 3, 1)),
  }
  for (const name of CANDIDATE_KERNELS)
    it(`${name} equals the composed kernel (grouped heads, batch 2, several blocks)`, async () => {
      const want = (await attend(composedAttention, feeds)).y
      const { y: got, ops } = await attend(candidateKernel(name, 16), feeds)
      expect(SIGNATURE[name](ops)).toBe(true)
      expect(got.length).toBe(want.length)
      let worst = 0
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]))
      expect(worst).toBeLessThan(1e-5)
    })

  it('the blocked candidates refuse a T that is not a multiple of the block', () => {
    const g = new Graph('bad')
    useAttentionKernel(g, candidateKernel('tiled-online', 20))
    const q = g.input('q', 'float32', [1, 1, 1, T, d])
    const k = g.input('k', 'float32', [1, 1, 1, T, d])
    expect(() => causalAttention(q, k, k, { dropout: 0, training: false })).toThrow(/multiple of the block \(20\)/)
  })
})

describe('attention-core bench', () => {
  it('measures every kernel in both layouts in its own process, skips what would not fit, and relates each to the shipped kernel', async () => {
    const { ATTENTION_CORE_DEFAULTS, attentionCoreMarkdown, runAttentionCore } = await import('./attentionCore')
    const tiny = { n_layer: 1, n_head: 4, n_kv_head: 2, n_embd: 32, vocab: 11 }
    const lines: string[] = []
    const r = await runAttentionCore(
      {
        ...ATTENTION_CORE_DEFAULTS,
        lengths: [32, 48],
        block: 16,
        warmup: 1,
        reps: 2,
        model: tiny,
        threads: 1,
        provider: 'cpu',
        maxEstimatedGiB: (4.5 * (4 * 4 * 32 * 32)) / 2 ** 30,
      },
      (m) => lines.push(m),
      fileURLToPath(new URL('../dist/prefill-worker.js', import.meta.url)), // built before tests (turbo)
    )
    expect(r.rows).toHaveLength(2 * 2 * 6)
    expect(lines.at(-1)).toMatch(/^24\/24 T=48 gqe tiled-online: [\d.]+ ms/)
    expect(r.rows.filter((x) => x.error)).toEqual([])
    // composed (4.5× its scores) fits at 32 but not at 48; the others fit at both
    expect(r.rows.filter((x) => x.skipped).map((x) => `${x.T}/${x.kernel}`)).toEqual(['48/composed', '48/composed'])
    for (const row of r.rows.filter((x) => x.run)) {
      expect(row.run!.samples).toHaveLength(2)
      expect(row.peakRssMiB).toBeGreaterThan(20)
      if (row.kernel === 'memory-efficient') expect(row.vsShipped).toBe(1)
      if (row.layout === 'gqe') expect(row.gqeSpeedup).toBeGreaterThan(0)
      else expect(row.gqeSpeedup).toBeUndefined()
    }
    expect(attentionCoreMarkdown(r)).toContain('`onnx-attention`: ONNX opset-23 Attention')
  }, 120_000)
})

describe('core-heads bench', () => {
  it('times every layout at each thread count, every call on the shipped kernel, with head-times against the 8-head call', async () => {
    const { CORE_HEADS_LAYOUTS, coreHeadsGraph, coreHeadsMarkdown, runCoreHeads } = await import('./coreHeads')
    // the gqe layout is the two calls the GQE layer makes: 8 one-head slots, then the shared head
    const gqe = coreHeadsGraph(CORE_HEADS_LAYOUTS.find((l) => l.name === 'gqe')!, 16, 8).graph
    const heads = gqe.nodes.filter((n) => n.op === 'GroupQueryAttention').map((n) => Number(n.attrs.num_heads.value))
    expect(heads).toEqual([8, 1])
    const r = await runCoreHeads({ lengths: [32], headDim: 8, warmup: 1, reps: 2, threads: [1, 2], provider: 'cpu' })
    expect(r.rows).toHaveLength(2 * CORE_HEADS_LAYOUTS.length)
    for (const row of r.rows) {
      expect(row.run.samples).toHaveLength(2)
      expect(row.gqaNodes).toBe(CORE_HEADS_LAYOUTS.find((l) => l.name === row.layout)!.calls.length)
      if (row.layout === 'heads-8') expect(row.headTimes).toBeCloseTo(8, 10)
      else expect(row.headTimes).toBeGreaterThan(0)
    }
    expect(r.speedups.map((s) => s.threads)).toEqual([1, 2])
    expect(coreHeadsMarkdown(r)).toContain('gqa ÷ gqe')
  })
})
