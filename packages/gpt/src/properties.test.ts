/** Properties every variant must have, independent of the reference fixtures. */
import { attentionCalls, groupedAttention } from '@moas/attention-schemes'
import { Graph, grad, hostTensor, ops, Session } from '@moas/tensor-core'
import { describe, expect, it } from 'vitest'
import { resolveConfig } from './config'
import { schemeConfig, staticMoas } from './moas'
import { buildGpt } from './model'
import { feedsOf, maxAbsErr, randomWeights, relErr, runGpt, tokens } from './testing/index'
import { VARIANTS, type Variant } from './variants'

const tiny = (attention: Variant, extra: Record<string, unknown> = {}) =>
  resolveConfig({ vocab_size: 13, block_size: 16, n_layer: 2, n_head: 4, n_embd: 16, dropout: 0, attention, ...extra })

const f32 = (x: { data: unknown }) => x.data as Float32Array

describe('variant equivalences', () => {
  it('gqa with n_kv_head = n_head equals mha given the same weights (c_attn = [q; k; v])', async () => {
    const B = 2,
      T = 9
    const ids = tokens(B * T, 13, 3)
    const gqa = await runGpt(tiny('gqa', { n_kv_head: 4 }), { batch: B, seq: T }, 11, ids, T)
    const mhaWeights = new Map(gqa.params)
    for (let i = 0; i < 2; i++) {
      const p = `transformer.h.${i}.attn.`
      const q = gqa.params.get(`${p}q_proj.weight`)!,
        k = gqa.params.get(`${p}k_proj.weight`)!,
        v = gqa.params.get(`${p}v_proj.weight`)!
      const fused = new Float32Array(q.length * 3)
      fused.set(q, 0)
      fused.set(k, q.length)
      fused.set(v, 2 * q.length)
      for (const n of ['q_proj', 'k_proj', 'v_proj']) mhaWeights.delete(`${p}${n}.weight`)
      mhaWeights.set(`${p}c_attn.weight`, fused)
    }
    const mha = await runGpt(tiny('mha'), { batch: B, seq: T }, mhaWeights, ids, T)
    expect(relErr(f32(mha.out.logits), f32(gqa.out.logits))).toBeLessThan(1e-6)
  })

  it('static-moas is the mean of its three branches', async () => {
    const cfg = tiny('static-moas')
    const B = 2,
      T = 5
    const x = Float32Array.from({ length: B * T * 16 }, (_, i) => Math.sin(i * 0.7))
    const build = (fn: (g: Graph, xin: ReturnType<Graph['input']>) => void) => {
      const g = new Graph('branches')
      fn(g, g.input('x', 'float32', [B, T, 16]))
      return g
    }
    const ctx = { training: false, gelu: 'none' as const }
    const mixed = build((g, xin) => g.output('y', staticMoas(xin, cfg, 'attn.', ctx).y))
    const weights = randomWeights(mixed, 5)
    const run = async (g: Graph) => await (await Session.create(g)).run({ ...feedsOf(weights, g), x: hostTensor('float32', [B, T, 16], x) })
    const y = f32((await run(mixed)).y)
    const parts = build((g, xin) =>
      (['mha', 'gqa', 'mqa'] as const).forEach((s) => g.output(s, groupedAttention(xin, schemeConfig(s, cfg), `attn.${s}.`, ctx))),
    )
    const o = await run(parts)
    const mean = y.map((_, i) => (f32(o.mha)[i] + f32(o.gqa)[i] + f32(o.mqa)[i]) / 3)
    expect(relErr(y, mean)).toBeLessThan(1e-6)
    expect(relErr(f32(o.mha), f32(o.mqa)), 'the branches differ, so the mean is a real check').toBeGreaterThan(0.1)
  })

  it('moas with a zero router equals static-moas (uniform gates 1/3)', async () => {
    const B = 2,
      T = 7
    const ids = tokens(B * T, 13, 8)
    const moas = tiny('moas')
    const g = new Graph('moas')
    buildGpt(g, moas, { batch: B, seq: T, training: false, withTargets: false })
    const weights = randomWeights(g, 21)
    for (const [name, w] of weights) if (name.includes('.router.')) w.fill(0)
    const routed = await runGpt(moas, { batch: B, seq: T }, weights, ids, T)
    const stat = new Map([...weights].filter(([n]) => !n.includes('.router.')))
    const plain = await runGpt(tiny('static-moas'), { batch: B, seq: T }, stat, ids, T)
    expect(relErr(f32(routed.out.logits), f32(plain.out.logits))).toBeLessThan(1e-6)
  })

  it('moas-topk with k = 3 and moas agree when moas has no gate dropout (all branches, raw-then-renormalized gates sum to 1)', async () => {
    const B = 1,
      T = 6
    const ids = tokens(T, 13, 4)
    const a = await runGpt(tiny('moas'), { batch: B, seq: T, routedTopK: false }, 31, ids, T)
    const b = await runGpt(tiny('moas-topk', { moas_top_k: 3 }), { batch: B, seq: T, routedTopK: false }, a.params, ids, T)
    expect(relErr(f32(b.out.logits), f32(a.out.logits))).toBeLessThan(1e-6)
  })
})

describe('causality: changing a future token never changes earlier logits', () => {
  const variants: [Variant, Record<string, unknown>][] = [
    ...VARIANTS.map((v) => [v, {}] as [Variant, Record<string, unknown>]),
    ['moas-topk', { moas_top_k: 2 }],
    ['gqe', { gqe_top_k: 2, n_kv_head: 2 }],
    ['gqe', { gqe_shared_kv: 'own' }],
  ]
  for (const [v, extra] of variants) {
    it(`${v} ${JSON.stringify(extra)}`, async () => {
      const cfg = tiny(v, extra)
      const T = 10,
        V = 13,
        B = 1
      const ids = tokens(T, V, 17)
      const g = new Graph('w')
      buildGpt(g, cfg, { batch: B, seq: T, training: false, withTargets: false })
      const weights = randomWeights(g, 99)
      // batch 1 inference: moas-topk takes the routed path here, so it is covered too
      const base = f32((await runGpt(cfg, { batch: B, seq: T }, weights, ids, T)).out.logits)
      for (const j of [3, 7]) {
        const changed = ids.slice()
        changed[j] = (changed[j] + 5) % V
        const other = f32((await runGpt(cfg, { batch: B, seq: T }, weights, changed, T)).out.logits)
        const before = j * V
        expect(maxAbsErr(other.subarray(0, before), base.subarray(0, before)), `positions < ${j}`).toBe(0)
        expect(maxAbsErr(other.subarray(before), base.subarray(before)), `position ${j} and later do change`).toBeGreaterThan(1e-3)
      }
    })
  }
})

describe('moas-topk routed inference (gather routed queries, one attention per branch, scatter back)', () => {
  for (const k of [1, 2]) {
    it(`k = ${k}: same logits as the dense formulation; symbolic sequence length`, async () => {
      const cfg = tiny('moas-topk', { moas_top_k: k })
      for (const T of [1, 5, 16]) {
        const ids = tokens(T, 13, 40 + T)
        const routed = await runGpt(cfg, { batch: 1, seq: 'seq' }, 7, ids, T)
        const dense = await runGpt(cfg, { batch: 1, seq: 'seq', routedTopK: false }, routed.params, ids, T)
        expect(
          attentionCalls(routed.graph).every((c) => String(c.seq).startsWith('routed_')),
          'each branch attends only its routed queries',
        ).toBe(true)
        expect(attentionCalls(dense.graph).some((c) => String(c.seq).startsWith('routed_'))).toBe(false)
        expect(relErr(f32(routed.out.logits), f32(dense.out.logits)), `T=${T}`).toBeLessThan(1e-6)
        expect([...routed.graph.paramNames()].sort()).toEqual([...dense.graph.paramNames()].sort())
      }
    })
  }

  it('handles branches that receive no token (zero router: all gates tie, lowest index wins)', async () => {
    for (const k of [1, 2]) {
      const cfg = tiny('moas-topk', { moas_top_k: k })
      const T = 6
      const ids = tokens(T, 13, 2)
      const g = new Graph('w')
      buildGpt(g, cfg, { batch: 1, seq: T, training: false, withTargets: false })
      const weights = randomWeights(g, 3)
      for (const [name, w] of weights) if (name.includes('.router.0.')) w.fill(0)
      const fetch = (m: any, gr: Graph) => {
        gr.output('logits', m.logits)
        m.chosen.forEach((c: any, i: number) => gr.output(`c${i}`, c))
      }
      const routed = await runGpt(cfg, { batch: 1, seq: T }, weights, ids, T, fetch)
      const dense = await runGpt(cfg, { batch: 1, seq: T, routedTopK: false }, weights, ids, T, fetch)
      expect(Array.from(routed.out.c0.data as BigInt64Array, Number)).toEqual(Array.from({ length: T * k }, (_, i) => i % k))
      expect(relErr(f32(routed.out.logits), f32(dense.out.logits))).toBeLessThan(1e-6)
    }
  })

  it('a static-length prefill attends its routed queries in blocks, each against the keys up to its last position, with the same logits', async () => {
    for (const [k, B, block] of [
      [1, 1, 8],
      [2, 1, 5],
      [1, 3, 8],
      [2, 3, 16],
    ]) {
      const cfg = tiny('moas-topk', { moas_top_k: k, block_size: 48 })
      const T = 37
      const ids = tokens(B * T, 13, 90 + k + B)
      const blocked = await runGpt(cfg, { batch: B, seq: T, routedQueryBlock: block }, 5, ids, T)
      const dense = await runGpt(cfg, { batch: B, seq: T, routedTopK: false }, blocked.params, ids, T)
      const oneCall = await runGpt(cfg, { batch: B, seq: T, routedQueryBlock: 0 }, blocked.params, ids, T)
      expect(relErr(f32(blocked.out.logits), f32(dense.out.logits)), `k=${k} B=${B} block=${block}`).toBeLessThan(1e-6)
      expect(relErr(f32(oneCall.out.logits), f32(dense.out.logits))).toBeLessThan(1e-6)
      const calls = attentionCalls(blocked.graph)
      expect(calls).toHaveLength(cfg.n_layer * 3 * Math.ceil(T / block))
      expect(
        calls.every((c) => /^routed_\d+_m?[a-z]+\.q\d+$/.test(String(c.seq)) && /\.k\d+$/.test(String(c.keys))),
        'block slots and their key bounds are data-dependent',
      ).toBe(true)
      expect(attentionCalls(oneCall.graph)).toHaveLength(cfg.n_layer * 3)
    }
    // The key bounds, read from a run: every block of the first layer's first branch attends to fewer
    // than all T keys unless it holds a query at the last position, and the bounds never decrease (batch 1).
    const cfg = tiny('moas-topk', { block_size: 48 })
    const T = 37
    const keyCounts = (m: any, g: Graph) => {
      g.output('logits', m.logits)
      attentionCalls(g)
        .slice(0, Math.ceil(T / 8))
        .forEach((c, i) => g.output(`k${i}`, ops.dimOf(c.k, 3)))
    }
    const run = await runGpt(cfg, { batch: 1, seq: T, routedQueryBlock: 8 }, 5, tokens(T, 13, 92), T, keyCounts)
    const bounds = Object.keys(run.out)
      .filter((n) => n.startsWith('k'))
      .map((n) => Number((run.out[n].data as BigInt64Array)[0]))
    expect(bounds.every((b, i) => b <= T && (i === 0 || b >= bounds[i - 1]))).toBe(true)
    expect(bounds[0]).toBeLessThan(T)
  })

  it('refuses a routedQueryBlock that is not a whole non-negative number', () => {
    for (const bad of [-1, 2.5, Number.NaN])
      expect(() => buildGpt(new Graph('x'), tiny('moas-topk'), { batch: 1, seq: 8, training: false, withTargets: false, routedQueryBlock: bad })).toThrow(
        /routedQueryBlock must be a whole number/,
      )
  })

  it('blocks also when a branch receives no token (its blocks are all empty)', async () => {
    const cfg = tiny('moas-topk', { block_size: 48 })
    const T = 20
    const ids = tokens(T, 13, 4)
    const g = new Graph('w')
    buildGpt(g, cfg, { batch: 1, seq: T, training: false, withTargets: false })
    const weights = randomWeights(g, 3)
    for (const [name, w] of weights) if (name.includes('.router.0.')) w.fill(0) // every token picks branch 0
    const blocked = await runGpt(cfg, { batch: 1, seq: T, routedQueryBlock: 6 }, weights, ids, T)
    const dense = await runGpt(cfg, { batch: 1, seq: T, routedTopK: false }, weights, ids, T)
    expect(relErr(f32(blocked.out.logits), f32(dense.out.logits))).toBeLessThan(1e-6)
  })

  it('routes a batch whose rows choose differently (each branch padded to the row with most routed tokens)', async () => {
    const cfg = tiny('moas-topk')
    const B = 3,
      T = 7
    const ids = tokens(B * T, 13, 77)
    const routed = await runGpt(cfg, { batch: B, seq: 'seq' }, 9, ids, T)
    const dense = await runGpt(cfg, { batch: B, seq: 'seq', routedTopK: false }, routed.params, ids, T)
    expect(relErr(f32(routed.out.logits), f32(dense.out.logits))).toBeLessThan(1e-6)
    expect(() => buildGpt(new Graph('x'), cfg, { batch: 1, seq: 4, training: true, withTargets: false, routedTopK: true })).toThrow(/inference path/)
  })
})

describe('GQE computes only k·G + 1 query heads', () => {
  /** Query heads (G·R) of each causalAttention call, as the attention core records them. */
  const attendingHeads = (g: Graph, T: number, d: number) =>
    attentionCalls(g)
      .filter((c) => c.seq === T && c.headDim === d)
      .map((c) => c.queryHeads)

  for (const [v, extra, expected] of [
    ['gqe', { n_kv_head: 2, gqe_top_k: 1 }, [2, 1]], // H = 4: 3 of 4 heads
    ['gqe', { n_kv_head: 1, gqe_top_k: 2 }, [2, 1]],
    ['gqe-no-shared', { n_kv_head: 2 }, [2]],
    ['mha', {}, [4]],
  ] as [Variant, Record<string, unknown>, number[]][]) {
    it(`${v} ${JSON.stringify(extra)}: ${expected.join(' + ')} query heads attend`, () => {
      const cfg = tiny(v, extra)
      const g = new Graph('x')
      buildGpt(g, cfg, { batch: 2, seq: 8, training: true, withTargets: true })
      const perLayer = attendingHeads(g, 8, 4).slice(0, expected.length)
      expect(perLayer).toEqual(expected)
      expect(attendingHeads(g, 8, 4).length).toBe(expected.length * cfg.n_layer)
    })
  }
})

describe('losses', () => {
  it('training loss = ce + balance_weight · balance; inference loss = ce; balance 0 without a router', async () => {
    const T = 8
    const ids = tokens(2 * T, 13, 5)
    const fetch = (m: any, g: Graph) => {
      g.output('ce', m.ceLoss)
      g.output('bal', m.balanceLoss)
      g.output('loss', m.loss)
    }
    const cfg = tiny('moas', { balance_weight: 0.5 })
    const tr = await runGpt(cfg, { batch: 2, seq: T, training: true, withTargets: true }, 1, ids, T, fetch)
    const ev = await runGpt(cfg, { batch: 2, seq: T, training: false, withTargets: true }, tr.params, ids, T, fetch)
    const n = (x: any) => Number(x.data[0])
    expect(n(tr.out.bal)).toBeGreaterThan(0)
    expect(n(tr.out.loss)).toBeCloseTo(n(tr.out.ce) + 0.5 * n(tr.out.bal), 5)
    expect(n(ev.out.loss)).toBe(n(ev.out.ce))
    expect(n(ev.out.ce)).toBeCloseTo(n(tr.out.ce), 6)
    const mha = await runGpt(tiny('mha'), { batch: 2, seq: T, training: true, withTargets: true }, 1, ids, T, fetch)
    expect(n(mha.out.bal)).toBe(0)
    expect(n(mha.out.loss)).toBe(n(mha.out.ce))
  })

  it('routingStats registers gates.{i} and chosen.{i} outputs', () => {
    const g = new Graph('x')
    const m = buildGpt(g, tiny('gqe'), { batch: 1, seq: 4, training: false, withTargets: false, routingStats: true })
    expect(g.outputs.map((o) => o.name)).toEqual(['gates.0', 'chosen.0', 'gates.1', 'chosen.1'])
    expect(m.gates[0].shape).toEqual([1, 4, 2, 2])
    expect(m.chosen[0].shape).toEqual([1, 4, 2, 1])
  })

  it('rejects a sequence longer than block_size', () => {
    expect(() => buildGpt(new Graph('x'), tiny('mha'), { batch: 1, seq: 17, training: false, withTargets: false })).toThrow(/seq 17 exceeds block_size 16/)
  })
})

describe('dropout sites (spec: embeddings; attention probabilities and residual per branch; MoAS gates; MLP)', () => {
  const sites: [Variant, number][] = [
    ['mha', 1 + 2 * 3],
    ['gqa', 1 + 2 * 3],
    ['mqa', 1 + 2 * 3],
    ['static-moas', 1 + 2 * (3 * 2 + 1)],
    ['moas', 1 + 2 * (3 * 2 + 1 + 1)],
    ['moas-topk', 1 + 2 * (3 * 2 + 1)],
    ['gqe', 1 + 2 * (2 + 1 + 1)],
    ['gqe-hard-only', 1 + 2 * 4],
    ['gqe-no-renorm', 1 + 2 * 4],
    ['gqe-no-shared', 1 + 2 * 3],
  ]
  for (const [v, expected] of sites) {
    it(`${v}: ${expected} sites in training, none in inference; caller-fed noise runs`, async () => {
      const cfg = tiny(v, { dropout: 0.1 })
      const g = new Graph('train')
      g.dropoutNoise = true
      const m = buildGpt(g, cfg, { batch: 2, seq: 8, training: true, withTargets: true })
      expect(g.dropoutMasks.length).toBe(expected)
      const inf = new Graph('eval')
      inf.dropoutNoise = true
      buildGpt(inf, cfg, { batch: 2, seq: 8, training: false, withTargets: true })
      expect(inf.dropoutMasks.length).toBe(0)
      if (v !== 'moas') return
      g.output('loss', m.loss!)
      const noise = Object.fromEntries(
        g.dropoutMasks.map(({ input, threshold }, i) => [
          input.name,
          hostTensor(
            'bool',
            input.shape as number[],
            Uint8Array.from({ length: (input.shape as number[]).reduce((a, b) => a * b, 1) }, (_, j) =>
              (((j + 1) * 40503 * (i + 3)) & 0xffff) >= threshold ? 1 : 0,
            ),
          ),
        ]),
      )
      const ids = tokens(16, 13, 1)
      const out = await (await Session.create(g)).run({
        ...feedsOf(randomWeights(g, 1), g),
        ...noise,
        idx: hostTensor('int64', [2, 8], ids),
        targets: hostTensor('int64', [2, 8], ids),
      })
      expect(Number.isFinite(Number(out.loss.data[0]))).toBe(true)
    })
  }

  // DropoutMaskInput.causal lets the trainer leave the upper triangle of those masks undrawn: prove that no
  // value there changes the loss or any gradient, bit for bit, and that only plain causal squares are marked.
  const causalSites: [Variant, number][] = [
    ['mha', 2],
    ['gqa', 2],
    ['static-moas', 6],
    ['moas', 6],
    ['moas-topk', 6],
    ['gqe', 4],
    ['gqe-no-shared', 2],
  ]
  for (const [v, expected] of causalSites) {
    it(`${v}: ${expected} causal attention sites, and what their masks hold above the diagonal changes neither loss nor gradients`, async () => {
      const B = 2,
        T = 8
      const g = new Graph('train')
      g.dropoutNoise = true
      const m = buildGpt(g, tiny(v, { dropout: 0.3 }), { batch: B, seq: T, training: true, withTargets: true })
      const causal = g.dropoutMasks.filter((s) => s.causal)
      expect(causal.length).toBe(expected)
      for (const s of causal) expect(s.input.shape.slice(-2)).toEqual([T, T])
      g.output('loss', m.loss!)
      const grads = grad(
        m.loss!,
        g.params.map((p) => p.tensor),
      )
      grads.forEach((d, i) => g.output(`grad/${i}`, d))
      const masks = (upper: number) =>
        Object.fromEntries(
          g.dropoutMasks.map(({ input, threshold, causal: c }, i) => {
            const shape = input.shape as number[]
            const flags = Uint8Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, j) => {
              const above = c && j % T > Math.floor(j / T) % T
              const r = ((j + 1) * 40503 * (i + 3) + (above ? upper : 0)) & 0xffff
              return r >= threshold ? 1 : 0
            })
            return [input.name, hostTensor('bool', shape, flags)]
          }),
        )
      const ids = tokens(B * T, 13, 5)
      const base = { ...feedsOf(randomWeights(g, 2), g), idx: hostTensor('int64', [B, T], ids), targets: hostTensor('int64', [B, T], ids) }
      const session = await Session.create(g)
      const a = await session.run({ ...base, ...masks(0) })
      const b = await session.run({ ...base, ...masks(12345) })
      const c = await session.run({
        ...base,
        ...masks(0),
        ...Object.fromEntries(
          causal.map((s) => [s.input.name, hostTensor('bool', s.input.shape as number[], upperZeroed(masks(0)[s.input.name].data as Uint8Array, T))]),
        ),
      })
      for (const name of Object.keys(a)) {
        expect([...(b[name].data as Float32Array)]).toEqual([...(a[name].data as Float32Array)])
        expect([...(c[name].data as Float32Array)]).toEqual([...(a[name].data as Float32Array)])
      }
      expect(Number(a.loss.data[0])).toBeGreaterThan(0)
    })
  }
  const upperZeroed = (flags: Uint8Array, T: number) => flags.map((f, j) => (j % T > Math.floor(j / T) % T ? 0 : f))

  it('a causal mark on anything but [..., T, T] probabilities is refused', () => {
    const g = new Graph('x')
    g.dropoutNoise = true
    expect(() => ops.dropout(g.input('p', 'float32', [2, 4, 5]), 0.1, true, undefined, { causal: true })).toThrow(/causal site needs \[\.\.\., T, T\]/)
  })
})
