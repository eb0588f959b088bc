import { Graph, type HostTensor, hostTensor, ops, Session } from '@moas/tensor-core'
import { gradcheck, randHost } from '@moas/tensor-core/testing'
import { describe, expect, it } from 'vitest'
import { attentionCalls, causalAttention, memoryEfficientAttention, mergeHeads, splitHeads, useAttentionKernel, visibilityMask } from './attention'

/** Plain-JS causal attention on [B,G,R,T,d] queries and [B,G,1,T,d] keys/values (keep: optional prob mask). */
function referenceAttention(q: HostTensor, k: HostTensor, v: HostTensor, keep?: (idx: number) => number): Float64Array {
  const [B, G, R, T, d] = q.shape
  const out = new Float64Array(B * G * R * T * d)
  const Q = q.data as Float64Array,
    K = k.data as Float64Array,
    V = v.data as Float64Array
  for (let b = 0; b < B; b++)
    for (let g = 0; g < G; g++)
      for (let r = 0; r < R; r++)
        for (let i = 0; i < T; i++) {
          const qOff = (((b * G + g) * R + r) * T + i) * d
          const kvBase = (b * G + g) * T * d
          const s: number[] = []
          for (let j = 0; j <= i; j++) {
            let dot = 0
            for (let c = 0; c < d; c++) dot += Q[qOff + c] * K[kvBase + j * d + c]
            s.push(dot / Math.sqrt(d))
          }
          const m = Math.max(...s)
          const e = s.map((x) => Math.exp(x - m))
          const z = e.reduce((a, c) => a + c, 0)
          for (let j = 0; j <= i; j++) {
            const p = (e[j] / z) * (keep ? keep((((b * G + g) * R + r) * T + i) * T + j) : 1)
            for (let c = 0; c < d; c++) out[qOff + c] += p * V[kvBase + j * d + c]
          }
        }
  return out
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length)
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]))
  return m
}

const shapes = { mha: [2, 3, 1, 5, 4], gqa: [2, 2, 3, 5, 4], mqa: [2, 1, 4, 5, 4] } as const

function feedsFor([B, G, R, T, d]: readonly number[], seed: number) {
  return {
    q: randHost('float64', [B, G, R, T, d], seed),
    k: randHost('float64', [B, G, 1, T, d], seed + 1),
    v: randHost('float64', [B, G, 1, T, d], seed + 2),
  }
}

describe('causalAttention', () => {
  for (const [name, shape] of Object.entries(shapes)) {
    it(`${name}: matches a plain-JS reference with static and symbolic B, T`, async () => {
      const [B, G, R, T, d] = shape
      const feeds = feedsFor(shape, 10)
      for (const dims of [
        [B, T],
        ['batch', 'seq'],
      ] as const) {
        const g = new Graph('attn')
        const q = g.input('q', 'float64', [dims[0], G, R, dims[1], d])
        const k = g.input('k', 'float64', [dims[0], G, 1, dims[1], d])
        const v = g.input('v', 'float64', [dims[0], G, 1, dims[1], d])
        g.output('y', causalAttention(q, k, v, { dropout: 0.5, training: false }))
        const s = await Session.create(g)
        const y = (await s.run(feeds)).y
        expect(y.shape).toEqual([B, G, R, T, d])
        expect(maxAbsDiff(y.data as Float64Array, referenceAttention(feeds.q, feeds.k, feeds.v))).toBeLessThan(1e-12)
      }
    })

    it(`${name}: gradients of q, k and v match finite differences (k, v summed over the R sharing heads)`, async () => {
      const [B, G, R, T, d] = shape
      const res = await gradcheck(
        (g) => {
          // symbolic B and T: the run-time causal mask must be differentiable through too
          const q = g.input('q', 'float64', ['batch', G, R, 'seq', d])
          const k = g.input('k', 'float64', ['batch', G, 1, 'seq', d])
          const v = g.input('v', 'float64', ['batch', G, 1, 'seq', d])
          return { outputs: causalAttention(q, k, v, { dropout: 0, training: true }), wrt: [q, k, v] }
        },
        { dims: { batch: B, seq: T }, maxPerTensor: 40 },
      )
      expect(res.ok, res.summary).toBe(true)
      expect(res.checked).toBe(Math.min(40, B * G * R * T * d) + 2 * Math.min(40, B * G * T * d))
    })
  }

  for (const dtype of ['float64', 'float32'] as const)
    it(`applies dropout to the probabilities, from caller-fed noise (${dtype}${dtype === 'float32' ? ': rescaled after p·v' : ''})`, async () => {
      const shape = [1, 2, 2, 6, 4]
      const [B, G, R, T, d] = shape
      const feeds: Record<string, HostTensor> = feedsFor(shape, 30)
      if (dtype === 'float32')
        for (const n of ['q', 'k', 'v']) feeds[n] = hostTensor('float32', feeds[n].shape as number[], Float32Array.from(feeds[n].data as Float64Array))
      const g = new Graph('attn-drop')
      g.dropoutNoise = true
      const q = g.input('q', dtype, [B, G, R, T, d])
      const k = g.input('k', dtype, [B, G, 1, T, d])
      const v = g.input('v', dtype, [B, G, 1, T, d])
      g.output('y', causalAttention(q, k, v, { dropout: 0.25, training: true }))
      expect(g.dropoutMasks.length).toBe(1)
      expect(g.dropoutMasks[0].input.shape).toEqual([B, G, R, T, T])
      expect(g.dropoutMasks[0].causal).toBe(true) // a plain causal square: the trainer may skip the upper triangle
      const n = B * G * R * T * T
      const noise = new Uint16Array(n)
      for (let i = 0; i < n; i++) noise[i] = (i * 40503) % 65536 // a spread of values on both sides of the threshold
      const threshold = Math.round(0.25 * 65536)
      expect(g.dropoutMasks[0].threshold).toBe(threshold)
      feeds[g.dropoutMasks[0].input.name] = hostTensor(
        'bool',
        [B, G, R, T, T],
        Uint8Array.from(noise, (v) => (v >= threshold ? 1 : 0)),
      )
      const y = (await (await Session.create(g)).run(feeds)).y
      if (dtype === 'float32')
        expect(g.nodes.filter((n) => n.op === 'Mul' && n.outputs[0].shape.length === 4).length, 'the scale multiplies p·v, not the probabilities').toBe(1)
      const f64 = feedsFor(shape, 30)
      const ref = referenceAttention(f64.q, f64.k, f64.v, (i) => (noise[i] < threshold ? 0 : 1 / (1 - threshold / 65536)))
      expect(maxAbsDiff(y.data as Float64Array, ref)).toBeLessThan(dtype === 'float64' ? 1e-12 : 1e-5)
      // and the mask really dropped something
      expect(maxAbsDiff(ref, referenceAttention(f64.q, f64.k, f64.v))).toBeGreaterThan(1e-3)
    })

  it('marks its dropout site causal only without a mask (a mask may let a query see keys above the diagonal)', () => {
    const g = new Graph('masked-drop')
    g.dropoutNoise = true
    const q = g.input('q', 'float32', [1, 2, 1, 4, 8])
    const k = g.input('k', 'float32', [1, 2, 1, 4, 8])
    causalAttention(q, k, k, { dropout: 0.1, training: true, mask: g.input('mask', 'float32', [1, 1, 1, 4, 4]) })
    causalAttention(q, k, k, { dropout: 0.1, training: true })
    expect(g.dropoutMasks.map((m) => m.causal === true)).toEqual([false, true])
  })

  it('records each call on its graph (query heads G·R, KV heads, head dim), for tests and cost accounting', () => {
    const g = new Graph('calls')
    expect(attentionCalls(g)).toEqual([])
    const q = g.input('q', 'float32', ['batch', 2, 3, 'seq', 4])
    const k = g.input('k', 'float32', ['batch', 2, 1, 'seq', 4])
    const y = causalAttention(q, k, k, { dropout: 0, training: false })
    const q1 = g.input('q1', 'float32', ['batch', 1, 1, 'seq', 4])
    causalAttention(q1, k.graph.input('k1', 'float32', ['batch', 1, 1, 'seq', 4]), q1, { dropout: 0, training: false })
    expect(attentionCalls(g).map((c) => [c.queryHeads, c.kvHeads, c.headDim, c.seq])).toEqual([
      [6, 2, 4, 'seq'],
      [1, 1, 4, 'seq'],
    ])
    expect(attentionCalls(g)[0].output).toBe(y)
    expect(attentionCalls(new Graph('other'))).toEqual([])
  })

  it('rejects ungrouped or mismatched shapes with a message naming the fix', () => {
    const g = new Graph('bad')
    const q = g.input('q', 'float32', [2, 3, 1, 5, 4])
    const k4 = g.input('k4', 'float32', [2, 3, 5, 4])
    const kR = g.input('kR', 'float32', [2, 3, 2, 5, 4])
    const kT = g.input('kT', 'float32', [2, 3, 1, 6, 4])
    expect(() => causalAttention(q, k4, k4, { dropout: 0, training: false })).toThrow(/rank-5/)
    expect(() => causalAttention(q, kR, kR, { dropout: 0, training: false })).toThrow(/size 1 on axis 2/)
    expect(() => causalAttention(q, kT, kT, { dropout: 0, training: false })).toThrow(/axis 3 \(T\)/)
  })
})

describe('memoryEfficientAttention (GroupQueryAttention)', () => {
  // float32 with head size 8 (the op needs a multiple of 8); the reference runs in float64 on the same values.
  const shapes32 = { mha: [2, 3, 1, 7, 8], gqa: [2, 2, 3, 7, 8], mqa: [1, 1, 4, 9, 8] } as const
  const build = (shape: readonly number[], dtype: 'float32' | 'float64' = 'float32') => {
    const [, G, R, , d] = shape
    const g = new Graph('attn')
    useAttentionKernel(g, memoryEfficientAttention)
    const q = g.input('q', dtype, ['batch', G, R, 'seq', d])
    const k = g.input('k', dtype, ['batch', G, 1, 'seq', d])
    const v = g.input('v', dtype, ['batch', G, 1, 'seq', d])
    g.output('y', causalAttention(q, k, v, { dropout: 0, training: false }))
    return g
  }
  const count = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op).length
  for (const provider of ['cpu', 'wasm'] as const) {
    for (const [name, shape] of Object.entries(shapes32)) {
      it(`${name} on ${provider}: one GroupQueryAttention node, equal to the plain-JS reference (1e-5)`, async () => {
        const g = build(shape)
        expect(count(g, 'GroupQueryAttention')).toBe(1)
        expect(count(g, 'Softmax')).toBe(0)
        const f64 = feedsFor(shape, 30)
        const f32 = (t: HostTensor) => hostTensor('float32', t.shape, Float32Array.from(t.data as Float64Array))
        const s = await Session.create(g, { provider })
        const y = (await s.run({ q: f32(f64.q), k: f32(f64.k), v: f32(f64.v) })).y
        expect(y.shape).toEqual([...shape])
        const ref = referenceAttention(...((['q', 'k', 'v'] as const).map((n) => f64[n]) as [HostTensor, HostTensor, HostTensor]))
        expect(maxAbsDiff(y.data as Float32Array, ref)).toBeLessThan(1e-5)
      })
    }
  }
  it('falls back to the composed kernel where the op cannot run: float64, head size not a multiple of 8, training', () => {
    expect(count(build(shapes32.gqa, 'float64'), 'GroupQueryAttention')).toBe(0)
    expect(count(build([2, 2, 3, 7, 4]), 'GroupQueryAttention')).toBe(0)
    const g = new Graph('train')
    useAttentionKernel(g, memoryEfficientAttention)
    const q = g.input('q', 'float32', [1, 1, 2, 4, 8])
    const k = g.input('k', 'float32', [1, 1, 1, 4, 8])
    g.output('y', causalAttention(q, k, k, { dropout: 0, training: true }))
    expect(count(g, 'GroupQueryAttention')).toBe(0)
    expect(count(g, 'Softmax')).toBe(1)
  })
})

describe("causalAttention with a cache's past (k, v the new positions only)", () => {
  // The last Tq of T = P + Tq positions attend to past ++ new; the reference is the whole sequence's.
  const [B, G, R, P, Tq, d] = [1, 2, 3, 5, 3, 8] // batch 1: GroupQueryAttention refuses a multi-token chunk after a past at batch > 1
  const T = P + Tq
  const f64 = feedsFor([B, G, R, T, d], 50)
  const positions = (t: HostTensor, from: number, to: number, dtype: 'float32' | 'float64') => {
    const [b, g, r, , dd] = t.shape
    const src = t.data as Float64Array
    const out = dtype === 'float64' ? new Float64Array(b * g * r * (to - from) * dd) : new Float32Array(b * g * r * (to - from) * dd)
    for (let i = 0; i < b * g * r; i++) out.set(src.subarray((i * T + from) * dd, (i * T + to) * dd), i * (to - from) * dd)
    return hostTensor(dtype, [b, g, r, to - from, dd], out)
  }
  const build = (dtype: 'float32' | 'float64', efficient: boolean) => {
    const g = new Graph('cached')
    if (efficient) useAttentionKernel(g, memoryEfficientAttention)
    const q = g.input('q', dtype, ['batch', G, R, 'seq', d])
    const k = g.input('k', dtype, ['batch', G, 1, 'seq', d])
    const v = g.input('v', dtype, ['batch', G, 1, 'seq', d])
    const past = { key: g.input('past_k', dtype, ['batch', G, 1, 'past', d]), value: g.input('past_v', dtype, ['batch', G, 1, 'past', d]) }
    const P0 = ops.dimOf(past.key, 3)
    const slots = ops.unsqueeze(ops.add(ops.range(ops.dimOf(q, 3), 'seq'), P0), [0]) // [1, Tq]: P + t
    const mask = visibilityMask(slots, { length: ops.add(P0, ops.dimOf(q, 3)), dim: 'past+seq' }, dtype)
    g.output('y', causalAttention(q, k, v, { dropout: 0, training: false, mask, causalSuffix: true, past }))
    return g
  }
  const feeds = (dtype: 'float32' | 'float64') => ({
    q: positions(f64.q, P, T, dtype),
    k: positions(f64.k, P, T, dtype),
    v: positions(f64.v, P, T, dtype),
    past_k: positions(f64.k, 0, P, dtype),
    past_v: positions(f64.v, 0, P, dtype),
  })
  const expected = () => positions(hostTensor('float64', [B, G, R, T, d], referenceAttention(f64.q, f64.k, f64.v)), P, T, 'float64').data as Float64Array
  const concatInputs = (g: Graph) => g.nodes.filter((n) => n.op === 'Concat').flatMap((n) => n.inputs.map((i) => i!.shape.length))

  it("composed: equals the whole sequence's reference, joining keys and values once each (through the cache's join when it offers one)", async () => {
    const g = build('float64', false)
    const y = (await (await Session.create(g)).run(feeds('float64'))).y
    expect(y.shape).toEqual([B, G, R, Tq, d])
    expect(maxAbsDiff(y.data as Float64Array, expected())).toBeLessThan(1e-12)
    const joins = g.nodes.filter((n) => n.op === 'Concat' && n.outputs[0].dtype === 'float64')
    expect(
      joins.map((n) => n.outputs[0].shape[3]),
      'K and V, past ++ new',
    ).toEqual(['past+seq', 'past+seq'])
    expect(attentionCalls(g)[0].keys).toBe('past+seq')
    // a join offered with the past is used instead of a Concat of the kernel's own
    const h = new Graph('offered')
    const q = h.input('q', 'float32', [1, 2, 1, 'seq', 8])
    const k = h.input('k', 'float32', [1, 2, 1, 'seq', 8])
    const whole = h.input('whole', 'float32', [1, 2, 1, 'past+seq', 8])
    const past = {
      key: h.input('pk', 'float32', [1, 2, 1, 'past', 8]),
      value: h.input('pv', 'float32', [1, 2, 1, 'past', 8]),
      join: () => ({ k: whole, v: whole }),
    }
    causalAttention(q, k, k, { dropout: 0, training: false, past, mask: h.input('mask', 'float32', [1, 1, 1, 'seq', 'past+seq']) })
    expect(h.nodes.filter((n) => n.op === 'Concat' && n.outputs[0].dtype === 'float32')).toEqual([])
    expect(h.nodes.some((n) => n.inputs.includes(whole))).toBe(true)
  })

  for (const provider of ['cpu', 'wasm'] as const)
    it(`memory-efficient on ${provider}: the past goes to GroupQueryAttention as past_key/past_value, no Concat or Slice of the cache (1e-5)`, async () => {
      const g = build('float32', true)
      const gqa = g.nodes.filter((n) => n.op === 'GroupQueryAttention')
      expect(gqa).toHaveLength(1)
      expect(
        concatInputs(g).every((rank) => rank <= 1),
        'only shape Concats',
      ).toBe(true)
      expect(g.nodes.filter((n) => n.op === 'Slice' && n.inputs[0]!.shape.length > 1)).toEqual([])
      const y = (await (await Session.create(g, { provider })).run(feeds('float32'))).y
      expect(maxAbsDiff(y.data as Float32Array, expected())).toBeLessThan(1e-5)
    })

  it('refuses a past without a mask, or one shaped unlike k and v', () => {
    const g = new Graph('bad-past')
    const q = g.input('q', 'float32', [1, 2, 1, 3, 8])
    const k = g.input('k', 'float32', [1, 2, 1, 3, 8])
    const past = { key: g.input('pk', 'float32', [1, 2, 1, 4, 8]), value: g.input('pv', 'float32', [1, 2, 1, 4, 8]) }
    expect(() => causalAttention(q, k, k, { dropout: 0, training: false, past })).toThrow(/a past needs a mask/)
    const mask = g.input('mask', 'float32', [1, 1, 1, 3, 7])
    expect(causalAttention(q, k, k, { dropout: 0, training: false, past, mask }).shape).toEqual([1, 2, 1, 3, 8])
    const wrong = { key: g.input('pk1', 'float32', [1, 1, 1, 4, 8]), value: past.value }
    expect(() => causalAttention(q, k, k, { dropout: 0, training: false, past: wrong, mask })).toThrow(/must be \[B, G, 1, P, d\] like k and v/)
    expect(() => causalAttention(q, k, k, { dropout: 0, training: false, past, mask: g.input('m6', 'float32', [1, 1, 1, 3, 6]) })).toThrow(/Tk = 7/)
  })
})

describe('splitHeads / mergeHeads', () => {
  it('split [B,T,n*d] into [B,n,T,d] with head h = channels h*d..h*d+d-1, and merge back', async () => {
    const g = new Graph('heads')
    const x = g.input('x', 'float64', ['batch', 'seq', 6])
    const s = splitHeads(x, 3, 2)
    expect(s.shape).toEqual(['batch', 3, 'seq', 2])
    g.output('split', s)
    g.output('merged', mergeHeads(s))
    const xv = randHost('float64', [2, 4, 6], 1)
    const out = await (await Session.create(g)).run({ x: xv })
    const X = xv.data as Float64Array
    const S = out.split.data as Float64Array
    for (let b = 0; b < 2; b++)
      for (let h = 0; h < 3; h++)
        for (let t = 0; t < 4; t++) for (let c = 0; c < 2; c++) expect(S[((b * 3 + h) * 4 + t) * 2 + c]).toBe(X[(b * 4 + t) * 6 + h * 2 + c])
    expect(Array.from(out.merged.data as Float64Array)).toEqual(Array.from(X))
  })
})
