// Correctness of what the benchmarks count and compare (never their timings): FLOP counting, statistics,
// the ONNX reader, and that the hand-written MatMul-only graph computes the gradients autodiff computes.
import { fileURLToPath } from 'node:url'
import { resolveConfig } from '@moas/gpt'
import { Graph, grad, hostTensor, liveNodes, ops, randomNormal, Session, serialize } from '@moas/tensor-core'
import { buildTrainingGraph, PAPER_OPTIM } from '@moas/trainer'
import { describe, expect, it } from 'vitest'
import { matmulFlops, matmulOnlyGraph, resolveDim } from './flops'
import { buildMatMulOnlyGraph, buildMlpStepGraph } from './mlpStep'
import { opCounts, readOnnxGraph } from './onnxInspect'
import type { PrefillRow } from './prefill'
import { syntheticFeeds } from './profile'
import { summarize } from './stats'
import { describeTrainStep, stepGoals, type TrainStepResult, type TrainStepRow, trainStepMarkdown } from './trainStep'

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
    const ws = Array.from({ length: 2 * cfg.blocks }, (_, l) =>
      g.param(`w${l}`, l % 2 ? [cfg.width, cfg.hidden] : [cfg.hidden, cfg.width], { init: { kind: 'zeros' } }),
    )
    for (const w of ws) h = ops.linear(h, w)
    grad(ops.reduceSum(ops.mul(h, cot), [0, 1]), ws).forEach((gw, l) => g.output(`dw${l}`, gw))

    let seed = 7
    const rnd = (n: number) => randomNormal(n, seed++, 0.3)
    const feeds: Record<string, ReturnType<typeof hostTensor>> = {
      x: hostTensor('float32', [cfg.rows, cfg.width], rnd(cfg.rows * cfg.width)),
      cotangent: hostTensor('float32', [cfg.rows, cfg.width], rnd(cfg.rows * cfg.width)),
    }
    ws.forEach((w, l) => (feeds[`w${l}`] = hostTensor('float32', w.shape as number[], rnd((w.shape[0] as number) * (w.shape[1] as number)))))
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

describe('matmulOnlyGraph (the train-step roofline)', () => {
  it('runs each MatMul of a graph with its operand shapes, broadcasting kept, and sums every product', async () => {
    const g = new Graph('src')
    const a = g.input('a', 'float32', [2, 3, 4])
    const b = g.input('b', 'float32', [4, 5])
    const c = g.input('c', 'float32', [2, 1, 5, 6])
    g.output('y', ops.gelu(ops.matmul(ops.transpose(ops.matmul(a, b), [0, 1, 2]), c)))
    const { graph, inputs } = matmulOnlyGraph(g)
    expect(inputs.map((i) => i.shape)).toEqual([
      [2, 3, 4],
      [4, 5],
      [2, 3, 5],
      [2, 1, 5, 6],
    ])
    expect(matmulFlops(graph)).toBe(matmulFlops(g))
    const feeds: Record<string, ReturnType<typeof hostTensor>> = {}
    inputs.forEach(
      (x, i) =>
        (feeds[x.name] = hostTensor(
          'float32',
          x.shape,
          randomNormal(
            x.shape.reduce((p, q) => p * q, 1),
            i + 1,
          ),
        )),
    )
    // The expected sum, from the products computed by a plain reference.
    const mm = (x: Float32Array, y: Float32Array, m: number, k: number, n: number) => {
      let s = 0
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let t = 0; t < k; t++) s += x[i * k + t] * y[t * n + j]
      return s
    }
    const [a0, b0, a1, b1] = inputs.map((x) => feeds[x.name].data as Float32Array)
    let want = 0
    for (let batch = 0; batch < 2; batch++) {
      want += mm(a0.subarray(batch * 12, batch * 12 + 12), b0, 3, 4, 5)
      for (let h = 0; h < 2; h++) want += mm(a1.subarray(h * 15, h * 15 + 15), b1.subarray(batch * 30, batch * 30 + 30), 3, 5, 6)
    }
    const got = (await (await Session.create(graph)).run(feeds)).sum.data[0] as number
    expect(got).toBeCloseTo(want, 3)
  })

  it('holds exactly the GEMMs of a real training graph (GQE: routed slots, backward, no optimizer work)', () => {
    const cfg = resolveConfig({ vocab_size: 11, attention: 'gqe', n_head: 4, n_kv_head: 2 }, 'smoke')
    const train = buildTrainingGraph(cfg, { batch: 2, seq: 8, optim: PAPER_OPTIM }).graph
    const { graph } = matmulOnlyGraph(train)
    expect(matmulFlops(graph)).toBe(matmulFlops(train))
    expect(graph.nodes.filter((n) => n.op === 'MatMul').length).toBe(liveNodes(train).filter((n) => n.op === 'MatMul').length)
    expect(new Set(graph.nodes.map((n) => n.op))).toEqual(new Set(['MatMul', 'ReduceSum', 'Sum', 'Identity'])) // Identity: the named output
  })
})

describe('prefill --profile', () => {
  it('profiles each whole-model forward of the plan, shipped kernel only, with the weights embedded (not fed)', async () => {
    const { PREFILL_DEFAULTS, profilePrefill } = await import('./prefill')
    const tiny = { n_layer: 1, n_head: 4, n_kv_head: 2, n_embd: 32, vocab: 11 }
    const cfg = {
      ...PREFILL_DEFAULTS,
      provider: 'cpu' as const,
      threads: 1,
      lengths: [16],
      variants: ['gqe', 'moas-topk'],
      settings: { gqe: tiny, paper: tiny },
    }
    const profiles = await profilePrefill(cfg, () => {}, 2)
    expect(profiles.map((p) => `${p.setting}/${p.variant}/${p.T}`)).toEqual(['gqe/gqa/16', 'gqe/gqe/16', 'paper/moas/16', 'paper/moas-topk/16'])
    for (const { variant, profile } of profiles) {
      expect(profile.runs).toBe(2)
      const ops = new Map(profile.byOp.map((r) => [r.key, r]))
      // gqa's and gqe's attention runs on GroupQueryAttention; moas-topk scatters its routed rows back
      if (variant.startsWith('gq')) expect(ops.get('GroupQueryAttention')?.ms).toBeGreaterThan(0)
      if (variant === 'moas-topk') expect(ops.has('ScatterND')).toBe(true)
      expect(profile.byOp.reduce((a, r) => a + r.ms, 0)).toBeLessThanOrEqual(profile.runMs * 1.05)
    }
  }, 60_000)
})

describe('syntheticFeeds (profiling a graph without its driver)', () => {
  it('fills every input and parameter with valid values: token ids in range, noise, scalars 1, params by their init', async () => {
    const cfg = resolveConfig({ vocab_size: 11, attention: 'mha', dropout: 0.1 }, 'smoke')
    const train = buildTrainingGraph(cfg, { batch: 2, seq: 8, optim: PAPER_OPTIM }).graph
    const feeds = syntheticFeeds(train, 11)
    for (const t of [...train.inputs, ...train.params.map((p) => p.tensor)]) {
      expect(feeds[t.name].dtype).toBe(t.dtype)
      expect(feeds[t.name].shape).toEqual(t.shape)
    }
    const ids = [...train.inputs].filter((t) => t.dtype === 'int64').flatMap((t) => Array.from(feeds[t.name].data as BigInt64Array, Number))
    expect(Math.min(...ids)).toBeGreaterThanOrEqual(0)
    expect(Math.max(...ids)).toBeLessThan(11)
    const masks = train.dropoutMasks.map((m) => feeds[m.input.name].data as Uint8Array)
    expect(masks.length).toBeGreaterThan(0)
    const kept = masks.reduce((a, m) => a + m.reduce((s, v) => s + v, 0), 0) / masks.reduce((a, m) => a + m.length, 0)
    expect(kept).toBeGreaterThan(0.8) // dropped at each site's own rate (0.1 here)
    expect(kept).toBeLessThan(0.97)
    // The training graph runs on them and gives a finite loss.
    const out = await (await Session.create(train)).run(feeds, ['loss'])
    expect(Number.isFinite(out.loss.data[0] as number)).toBe(true)
    const bad = new Graph('sym')
    bad.input('x', 'float32', ['batch', 3])
    expect(() => syntheticFeeds(bad, 1)).toThrow(/symbolic dim 'batch'/)
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
    const { describeDecode, runDecode } = await import('./decode')
    const model = { vocab_size: 20, block_size: 16, n_layer: 1, n_head: 4, n_embd: 16, n_kv_head: 2, dropout: 0, bias: false, balance_weight: 0.01 }
    const r = await runDecode({
      settings: [{ name: 'tiny', model, variants: ['mha', 'moas', 'gqe'], contexts: [6, 12], batches: [1, 3] }],
      steps: 2,
      warmup: 1,
      recomputeReps: 1,
      threads: 1,
      bandwidthMiB: 16,
    })
    expect(r.bandwidth.GBps).toBe(Math.max(r.bandwidth.jsGBps, r.bandwidth.ortGBps))
    expect(r.bandwidth.GBps).toBeGreaterThan(0)
    expect(r.rows.map((row) => `${row.variant}/${row.batch}/${row.context}`)).toEqual(
      ['mha', 'moas', 'gqe'].flatMap((v) => [`${v}/1/6`, `${v}/1/12`, `${v}/3/6`, `${v}/3/12`]),
    )
    for (const row of r.rows) {
      expect(row.kvBytesPerToken).toBe(row.kvBytesPerTokenModel)
      expect(row.step.samples).toHaveLength(2)
      expect(row.recompute === null).toBe(row.batch !== 1)
      // a step reads the weights and the cache it holds: more at the longer context, the same weights
      const other = r.rows.find((o) => o.variant === row.variant && o.batch === row.batch && o.context !== row.context)!
      expect(row.bytesPerStep - other.bytesPerStep).toBe((row.context - other.context) * row.kvBytesPerToken * row.batch)
      expect(row.fractionOfBound).toBeCloseTo(row.bytesPerStep / (r.bandwidth.GBps * 1e9) / (row.step.median / 1000), 9)
    }
    expect(describeDecode(r)).toMatch(/"of bound": that read at [\d.]+ GB\/s \(measured in this run/)
    // contexts below 8k: the goal's rows were not measured, and the text says so rather than 'met'
    expect(describeDecode(r)).toContain('from 8k of context (batch 1, mha, gqa, gqe, mqa): not measured in this run')
  })

  it('from an exported folder: its own graph and the decoder built from its weights hold the same cache', async () => {
    const { runDecode } = await import('./decode')
    const model = { vocab_size: 20, block_size: 16, n_layer: 1, n_head: 4, n_embd: 16, n_kv_head: 2, dropout: 0, bias: false, balance_weight: 0.01 }
    const settings = (['exported', 'weights'] as const).map((folder) => ({
      name: folder,
      model,
      variants: ['gqe'],
      contexts: [12],
      batches: [1],
      recompute: false,
      folder,
    }))
    const r = await runDecode({ settings, steps: 2, warmup: 1, recomputeReps: 1, threads: 1, bandwidthMiB: 16 })
    expect(r.rows.map((row) => row.setting)).toEqual(['exported', 'weights'])
    for (const row of r.rows) expect([row.kvBytesPerToken, row.recompute]).toEqual([row.kvBytesPerTokenModel, null])
  })

  it('on the memory-efficient core: the same cache bytes, no recompute where the setting says so', async () => {
    const { runDecode } = await import('./decode')
    const model = { vocab_size: 20, block_size: 32, n_layer: 1, n_head: 4, n_embd: 32, n_kv_head: 2, dropout: 0, bias: false, balance_weight: 0.01 }
    const r = await runDecode({
      settings: [{ name: 'long', model, variants: ['gqa', 'gqe'], contexts: [12, 24], batches: [1], attention: 'memory-efficient', recompute: false }],
      steps: 2,
      warmup: 1,
      recomputeReps: 1,
      threads: 1,
    })
    expect(r.rows.map((row) => `${row.variant}/${row.context}`)).toEqual(['gqa/12', 'gqa/24', 'gqe/12', 'gqe/24'])
    for (const row of r.rows) {
      expect(row.kvBytesPerToken).toBe(row.kvBytesPerTokenModel)
      expect(row.kvBytesPerToken).toBe(2 * 2 * 8 * 4) // K and V, 2 KV heads of size 8, float32, 1 layer
      expect([row.recompute, row.cacheSpeedup]).toEqual([null, null])
    }
  })
})

describe('prefill sweep', () => {
  it('credits a GroupQueryAttention node with the causal pairs only: 2·2·d per (query, visible key) and head', async () => {
    const { causalAttention, memoryEfficientAttention, useAttentionKernel } = await import('@moas/attention-schemes')
    const [B, G, R, T, d] = [2, 2, 3, 8, 8]
    const g = new Graph('gqa-flops')
    useAttentionKernel(g, memoryEfficientAttention)
    const q = g.input('q', 'float32', [B, G, R, T, d])
    const k = g.input('k', 'float32', [B, G, 1, T, d])
    g.output('y', causalAttention(q, k, k, { dropout: 0, training: false }))
    expect(g.nodes.filter((n) => n.op === 'GroupQueryAttention')).toHaveLength(1)
    expect(matmulFlops(g)).toBe(2 * 2 * d * ((T * (T + 1)) / 2) * G * R * B)
  })

  it('plans every part up to its limit, variants of one length back to back', async () => {
    const { PREFILL_DEFAULTS, prefillPlan } = await import('./prefill')
    const plan = prefillPlan(PREFILL_DEFAULTS)
    const at = (T: number) => plan.filter((e) => e.T === T).map((e) => `${e.setting}/${e.kernel}/${e.part}/${e.variant}`)
    expect(at(32768)).toEqual([
      'gqe/memory-efficient/model/gqa',
      'gqe/memory-efficient/model/gqe',
      'gqe/memory-efficient/core/gqa',
      'gqe/memory-efficient/core/gqe',
    ])
    expect(at(4096)).toContain('gqe/composed/core/gqe')
    expect(at(8192)).not.toContain('gqe/composed/model/gqa')
    expect(at(8192)).toContain('paper/memory-efficient/model/moas-topk')
    expect(at(16384)).toContain('gqe/memory-efficient/model/mqa')
    expect(at(16384)).not.toContain('gqe/memory-efficient/model/gqe-no-shared')
    expect(plan.map((e) => e.T)).toEqual([...plan.map((e) => e.T)].sort((a, b) => a - b))
    // --variants: each one with its baseline, nothing else
    const only = prefillPlan({ ...PREFILL_DEFAULTS, lengths: [1024], variants: ['gqe', 'moas-topk'] })
    expect(only.map((e) => `${e.kernel}/${e.part}/${e.variant}`)).toEqual([
      'memory-efficient/model/gqa',
      'memory-efficient/model/gqe',
      'memory-efficient/core/gqa',
      'memory-efficient/core/gqe',
      'composed/model/gqa',
      'composed/model/gqe',
      'composed/core/gqa',
      'composed/core/gqe',
      'memory-efficient/model/moas',
      'memory-efficient/model/moas-topk',
    ])
    expect(() => prefillPlan({ ...PREFILL_DEFAULTS, variants: ['gqe-hardonly'] })).toThrow(/no measurement of gqe-hardonly; it measures gqa, gqe/)
  })

  it('runs each measurement in its own process and derives speed-ups, ceilings and goals from what it measured', async () => {
    const { PREFILL_DEFAULTS, describePrefill, prefillChart, prefillMarkdown, runPrefill } = await import('./prefill')
    const tiny = { n_layer: 1, n_head: 4, n_kv_head: 2, n_embd: 32, vocab: 11 }
    const lines: string[] = []
    const r = await runPrefill(
      {
        ...PREFILL_DEFAULTS,
        provider: 'cpu',
        threads: 1,
        lengths: [24],
        reps: 2,
        repsLong: 2,
        warmup: 1,
        settings: { gqe: tiny, paper: tiny },
        limits: { ablations: 24, references: 0, composed: 24, paper: 24 },
      },
      (m) => lines.push(m),
      fileURLToPath(new URL('../dist/prefill-worker.js', import.meta.url)),
    ) // built before tests (turbo)
    expect(r.rows.map((x) => x.error ?? 'ok').filter((e) => e !== 'ok')).toEqual([])
    expect(lines.at(-1)).toMatch(/\[#+\] 100% 13\/13 ETA 0 s/)
    for (const row of r.rows) {
      expect(row.run!.samples).toHaveLength(2)
      expect(row.peakRssMiB).toBeGreaterThan(row.part === 'core' ? 20 : 30)
      const baseline = row.setting === 'gqe' ? 'gqa' : 'moas'
      if (row.variant === baseline) expect([row.speedup, row.ceiling]).toEqual([1, 1])
      // memory-efficient: every attention call on GroupQueryAttention, except moas-topk's routed ones
      if (row.kernel === 'composed' || row.variant === 'moas-topk') expect(row.ops!.groupQueryAttention).toBe(0)
      else {
        // one GroupQueryAttention node per core call; the only Softmax left is a routed model's router (one layer)
        const calls =
          row.part === 'core' && row.variant === 'gqe'
            ? 2
            : row.variant === 'moas'
              ? 3
              : row.part === 'core'
                ? 1
                : row.variant.startsWith('gqe')
                  ? row.variant === 'gqe-no-shared'
                    ? 1
                    : 2
                  : 1
        const routers = row.part === 'model' && (row.variant === 'moas' || row.variant.startsWith('gqe')) ? 1 : 0
        expect([row.ops!.groupQueryAttention, row.ops!.softmax], `${row.part} ${row.variant}`).toEqual([calls, routers])
      }
    }
    // GQE's core: G·k + 1 = 3 query heads instead of 4, exactly
    const core = r.rows.find((x) => x.kernel === 'memory-efficient' && x.part === 'core' && x.variant === 'gqe')!
    expect(core.ceiling).toBeCloseTo(4 / 3, 12)
    expect(r.goals.map((g) => g.met).slice(0, 2)).toEqual([false, false]) // nothing at 4k or more
    // the other two follow their thresholds on what was measured
    const topk = r.rows.filter((x) => x.setting === 'paper' && x.variant === 'moas-topk')
    expect(r.goals[2].met).toBe(topk.length > 0 && topk.every((x) => x.efficiency! >= 0.8))
    const longest = r.rows.find((x) => x.setting === 'gqe' && x.kernel === 'memory-efficient' && x.part === 'model' && x.variant === 'gqe' && x.T === 24)!
    expect(r.goals[3].met).toBe(longest.peakRssMiB! < 24 * 1024 && r.memoryExponent !== null && r.memoryExponent <= 1.2)
    expect(r.goals[0].measured).toBe('not measured') // nothing at 4k or more
    expect(r.goals[2].measured).toMatch(/^24: [\d.]+× of [\d.]+× = [\d.]+$/)
    // a goal not met says why where it was measured, never where it was not
    const [text, md] = [describePrefill(r), prefillMarkdown(r)]
    expect(r.goals[1].reasonIfNotMet).toBeUndefined() // the core was not measured at 4k or more: no reason to give
    for (const g of r.goals) {
      const shown = !g.met && g.measured !== 'not measured' && !!g.reasonIfNotMet
      expect(text.includes(`why: ${g.reasonIfNotMet}`)).toBe(shown)
      expect(md.includes(`| ${g.reasonIfNotMet} |`)).toBe(shown)
    }
    const svg = prefillChart(r)
    expect(svg).toMatch(/^<svg [\s\S]*<\/svg>\n$/)
    expect(svg).toContain('paper: 1.67–1.8× from 4k')
    expect(prefillMarkdown(r)).toContain('| 24 | gqe |')
  }, 120_000)
})

describe('prefill goals', () => {
  it("the core goal's reason, when missed, gives this run's call times against the ceiling; none when met", async () => {
    const { PREFILL_DEFAULTS, prefillGoals } = await import('./prefill')
    const cfg = { ...PREFILL_DEFAULTS, provider: 'cpu' as const, threads: 2 }
    const timing = (median: number) => ({ median, min: median, max: median, samples: [median] }) as never
    const row = (variant: string, median: number, speedup?: number) => ({
      setting: 'gqe' as const,
      kernel: 'memory-efficient' as const,
      part: 'core' as const,
      variant,
      T: 4096,
      run: timing(median),
      speedup,
      ceiling: 16 / 9,
    })
    const missed = prefillGoals(cfg, [row('gqa', 150, 1), row('gqe', 100, 1.5)], null)[1]
    expect(missed.met).toBe(false)
    expect(missed.reasonIfNotMet).toBe(
      "4k: gqa 150.0 ms, gqe 100.0 ms (1.50× of a 1.78× FLOP ceiling) on 2 threads; `pnpm bench --bench core-heads` splits the core's time by call and thread count on this machine (docs/performance.md has the analysis of the 2-thread gap)",
    )
    const met = prefillGoals(cfg, [row('gqa', 170, 1), row('gqe', 100, 1.7)], null)[1]
    expect([met.met, met.reasonIfNotMet]).toEqual([true, undefined])
  })
})

describe('dropout-mask bench', () => {
  it('times both formulations of one site on the same mask and reports their ratio', async () => {
    const { runDropoutMask } = await import('./dropoutMask')
    const r = await runDropoutMask({ shape: [3, 8, 12], ratio: 0.25, warmup: 1, reps: 2, threads: 1, variants: ['mha'] })
    expect(r.elements).toBe(288)
    expect(r.noise.draw.samples).toHaveLength(2)
    expect(r.speedup).toBeCloseTo((r.noise.draw.median + r.noise.graph.median) / (r.keep.draw.median + r.keep.graph.median), 9)
    // The paper step's masks for mha: 4 causal attention sites of [12, 6, 256, 256], whose rows draw 256 · 130 of 256² flags.
    const [mha] = r.step
    expect(mha).toMatchObject({ variant: 'mha', causalSites: 4 })
    expect(mha.drawn.full).toBe(mha.elements)
    expect(mha.elements - mha.drawn['causal-rows']).toBe(4 * 12 * 6 * (256 * 256 - 256 * 130))
    expect(mha.ms.full.samples).toHaveLength(2)
    expect(mha.ratio).toBeCloseTo(mha.ms['causal-rows'].median / mha.ms.full.median, 9)
    await expect(runDropoutMask({ shape: [3, 5], ratio: 0.1, warmup: 0, reps: 1, threads: 1, variants: [] })).rejects.toThrow(/multiple of 4/)
  })
})

describe('train-step goals', () => {
  const row = (variant: string, stepMs: number[], matmulOnlyMs: number, gflop: number, extra: Partial<TrainStepRow> = {}): TrainStepRow => {
    const step = summarize(stepMs)
    return {
      variant,
      params: 1,
      gflop,
      gemms: 1,
      step,
      matmulOnly: summarize([matmulOnlyMs]),
      roofline: matmulOnlyMs / step.median,
      tokensPerS: 1,
      gflops: 1,
      vsMha: null,
      flopRatio: null,
      kvBytesPerToken: 1,
      setupMs: 1,
      noiseMs: 10,
      noiseShare: 10 / step.median,
      noiseValues: 2e6,
      ...extra,
    }
  }
  const result = (rows: TrainStepRow[], profiles?: TrainStepResult['profiles']): TrainStepResult => ({
    config: { variants: rows.map((r) => r.variant), batch: 1, seq: 1, vocab: 1, warmup: 0, reps: 3, threads: 1 },
    model: resolveConfig({ vocab_size: 4 }, 'smoke'),
    rows,
    profiles,
  })

  it('a missed goal says why from the same run: the time/FLOP ratio split into GEMMs × the rest, exactly', () => {
    const mha = row('mha', [900, 1000, 1100], 850, 100, { vsMha: 1, flopRatio: 1 })
    // twice mha's FLOPs, GEMMs 1.05× mha's time per FLOP, the step 2.5× mha's: 1.25 = 1.05 × 1.19
    const slow = row('moas', [2400, 2500, 2700], 850 * 2 * 1.05, 200, { vsMha: 2.5, flopRatio: 2, noiseMs: 200, noiseShare: 0.08 })
    const ok = row('gqa', [1000, 1000, 1000], 800, 95, { vsMha: 1, flopRatio: 0.95 })
    const goals = stepGoals(slow, mha)
    expect(goals.map((g) => g.met)).toEqual([false, false])
    expect(goals[0].why).toMatch(/^1\.25 = 1\.05 \(its GEMMs alone, time per FLOP over mha's\) × 1\.19 \(the rest/)
    expect(goals[0].why).toContain('between 1.20 and 1.35') // 2400/1000/2, 2700/1000/2
    expect(goals[1].why).toBe('the JS draw of 2.0 M mask values per step takes 200 ms of a 2500 ms step')
    expect(stepGoals(ok, mha).every((g) => g.met && g.why === undefined)).toBe(true)
    // mha under its roofline goal: its non-GEMM time, and with a profile the largest non-GEMM kernels
    const profile = {
      runs: 1,
      runMs: 1,
      byOp: [
        { key: 'FusedMatMul', ms: 50, calls: 1 },
        { key: 'Cast', ms: 30, calls: 1 },
        { key: 'Mul', ms: 20, calls: 1 },
      ],
      byNode: [],
      byScope: [],
      optimizedOps: {},
    }
    const lowMha = row('mha', [1000], 700, 100, { vsMha: 1, flopRatio: 1 })
    expect(stepGoals(lowMha, lowMha, profile)[0].why).toBe(
      'work other than its GEMMs takes 300 of 1000 ms; largest non-GEMM kernels (profile): Cast 30 %, Mul 20 %',
    )
    // printed under the row in text, and in the markdown's last column, exactly when a goal is missed
    const r = result([mha, ok, slow])
    const text = describeTrainStep(r)
    expect(text.match(/why: /g)).toHaveLength(2)
    expect(text).toContain(`why: ${goals[0].why}`)
    const md = trainStepMarkdown(r)
    expect(md).toContain(`| ${goals[0].why}; ${goals[1].why} |`)
    expect(md.split('\n').filter((l) => l.startsWith('| gqa '))[0]).toMatch(/\| {2}\|$/)
  })
})

describe('prefill goals', () => {
  it("GQE's whole model under 0.9 of its ceiling says why: its core alone against the core's ceiling, at each length that fell short", async () => {
    const { prefillGoals, PREFILL_DEFAULTS } = await import('./prefill')
    const row = (part: 'model' | 'core', T: number, speedup: number, ceiling: number): PrefillRow => ({
      setting: 'gqe',
      kernel: 'memory-efficient',
      part,
      variant: 'gqe',
      T,
      speedup,
      ceiling,
      efficiency: speedup / ceiling,
    })
    const rows = [row('model', 4096, 1.1, 1.16), row('model', 8192, 1.05, 1.25), row('core', 4096, 1.55, 16 / 9), row('core', 8192, 1.4, 16 / 9)]
    const [model] = prefillGoals({ ...PREFILL_DEFAULTS, lengths: [4096, 8192], threads: 1, provider: 'cpu' }, rows, null)
    expect(model.met).toBe(false)
    expect(model.measured).toBe('4k: 1.10× of 1.16× = 0.95, 8k: 1.05× of 1.25× = 0.84')
    expect(model.reasonIfNotMet).toMatch(/its attention core alone reached 8k: 1\.40× of 1\.78× \(speed-up of its own ceiling\) in this run$/)
    const met = prefillGoals(
      { ...PREFILL_DEFAULTS, lengths: [4096], threads: 1, provider: 'cpu' },
      rows.filter((r) => r.T === 4096),
      null,
    )[0]
    expect([met.met, met.reasonIfNotMet]).toEqual([true, undefined])
  })
})
