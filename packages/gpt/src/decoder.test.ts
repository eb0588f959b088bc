/**
 * The merged decoder graph (kvCache): prefill then one token at a time must give the full forward's
 * logits, for every variant, for batch 1 and for a left-padded batch; the cache it holds must have the
 * size kvCacheBytesPerToken states.
 */
import { type AttentionKernel, attentionCalls, joinPast, memoryEfficientAttention } from '@moas/attention-schemes'
import { Graph, type HostTensor, hostTensor, ops, Session } from '@moas/tensor-core'
import { describe, expect, it } from 'vitest'
import { type GptConfig, resolveConfig } from './config'
import { buildGpt, DECODER_IO } from './model'
import { kvCacheBytesPerToken } from './params'
import { feedsOf, maxAbsErr, randomWeights, runGpt, tokens } from './testing/index'
import { kvHeadsPerLayer, VARIANTS, type Variant } from './variants'

const tiny = (attention: Variant, extra: Record<string, unknown> = {}) =>
  resolveConfig({ vocab_size: 13, block_size: 16, n_layer: 2, n_head: 4, n_embd: 16, dropout: 0, attention, ...extra })

const cases = (extra: Record<string, unknown> = {}): [string, GptConfig][] => [
  ...VARIANTS.map((v) => [v, tiny(v, extra)] as [string, GptConfig]),
  ['moas-topk k=2', tiny('moas-topk', { moas_top_k: 2, ...extra })],
  ['gqe shared kv own', tiny('gqe', { gqe_shared_kv: 'own', ...extra })],
  ['gqa bias', tiny('gqa', { bias: true, ...extra })],
]
const CASES = cases()
/** GroupQueryAttention needs a head size that is a multiple of 8. */
const CASES_D8 = cases({ n_embd: 32 })

const i64 = (rows: number[][]) => hostTensor('int64', [rows.length, rows[0].length], rows.flat())

/** A decoder session over `cfg` with `weights`, stepping a batch of rows; keeps the cache between calls. */
async function decoder(cfg: GptConfig, weights: Map<string, Float32Array | Float64Array>, opts: { attentionKernel?: AttentionKernel; padding?: boolean } = {}) {
  const g = new Graph(`decoder-${cfg.attention}`)
  const m = buildGpt(g, cfg, { batch: DECODER_IO.dims.batch, seq: DECODER_IO.dims.seq, training: false, withTargets: false, kvCache: true, ...opts })
  const session = await Session.create(g)
  const d = cfg.n_embd / cfg.n_head
  const heads = kvHeadsPerLayer(cfg)
  return {
    graph: g,
    model: m,
    /** Run new tokens [B][T] with masks [B][P+T] and positions [B][T]; returns logits and the presents. */
    async init(B: number) {
      let past: Record<string, HostTensor> = {}
      for (let i = 0; i < cfg.n_layer; i++) {
        past[DECODER_IO.pastKey(i)] = hostTensor('float32', [B, heads, 0, d])
        past[DECODER_IO.pastValue(i)] = hostTensor('float32', [B, heads, 0, d])
      }
      return async (ids: number[][], mask: number[][], positions: number[][]) => {
        const out = await session.run({
          ...feedsOf(weights, g),
          ...past,
          [DECODER_IO.inputIds]: i64(ids),
          [DECODER_IO.attentionMask]: i64(mask),
          [DECODER_IO.positionIds]: i64(positions),
        })
        past = {}
        for (let i = 0; i < cfg.n_layer; i++) {
          past[DECODER_IO.pastKey(i)] = out[DECODER_IO.presentKey(i)]
          past[DECODER_IO.pastValue(i)] = out[DECODER_IO.presentValue(i)]
        }
        return out
      }
    },
    release: () => session.release(),
  }
}

/** Full-forward logits [T, V] of one sequence (batch 1; moas-topk on its dense formulation, an independent path). */
async function fullLogits(cfg: GptConfig, weights: Map<string, Float32Array | Float64Array>, ids: number[]): Promise<Float32Array> {
  const r = await runGpt(cfg, { batch: 1, seq: ids.length, routedTopK: false }, weights, ids, ids.length)
  return r.out.logits.data as Float32Array
}

const row = (logits: HostTensor, b: number, t: number, V: number) => {
  const [, T] = logits.shape
  return (logits.data as Float32Array).subarray((b * T + t) * V, (b * T + t + 1) * V)
}

describe('decoder graph with a KV cache', () => {
  it.each(CASES)('%s: prefill + decode steps equal the full forward (batch 1), and the cache holds kvCacheBytesPerToken', async (_, cfg) => {
    const V = cfg.vocab_size
    const seq = tokens(9, V, 5)
    const g0 = new Graph('w')
    buildGpt(g0, cfg, { batch: 1, seq: 1, training: false, withTargets: false })
    const weights = randomWeights(g0, 17)
    const full = await fullLogits(cfg, weights, seq)
    const dec = await decoder(cfg, weights)
    const step = await dec.init(1)
    const prompt = 5
    let out = await step([seq.slice(0, prompt)], [Array(prompt).fill(1)], [[0, 1, 2, 3, 4]])
    let worst = 0
    for (let t = 0; t < prompt; t++) worst = Math.max(worst, maxAbsErr(row(out.logits, 0, t, V), full.subarray(t * V, (t + 1) * V)))
    for (let t = prompt; t < seq.length; t++) {
      out = await step([[seq[t]]], [Array(t + 1).fill(1)], [[t]])
      worst = Math.max(worst, maxAbsErr(row(out.logits, 0, 0, V), full.subarray(t * V, (t + 1) * V)))
    }
    expect(worst).toBeLessThan(1e-5)
    // The bytes the graph holds per cached token equal the cost model's figure.
    let bytes = 0
    for (let i = 0; i < cfg.n_layer; i++) {
      for (const name of [DECODER_IO.presentKey(i), DECODER_IO.presentValue(i)]) {
        const t = out[name]
        expect(t.shape[2], `${name} covers every position`).toBe(seq.length)
        bytes += (t.data as Float32Array).byteLength
      }
    }
    expect(bytes / seq.length).toBe(kvCacheBytesPerToken(cfg))
    await dec.release()
  })

  it.each(CASES)('%s: a left-padded batch of prompts of different lengths decodes each row as if it were alone', async (_, cfg) => {
    const V = cfg.vocab_size
    const lengths = [6, 3, 1]
    const seqs = lengths.map((n, b) => tokens(n + 3, V, 40 + b)) // each prompt then 3 generated tokens
    const g0 = new Graph('w')
    buildGpt(g0, cfg, { batch: 1, seq: 1, training: false, withTargets: false })
    const weights = randomWeights(g0, 23)
    const dec = await decoder(cfg, weights)
    const step = await dec.init(lengths.length)
    const L = Math.max(...lengths)
    const pad = (b: number) => L - lengths[b]
    let out = await step(
      seqs.map((s, b) => [...Array(pad(b)).fill(0), ...s.slice(0, lengths[b])]),
      lengths.map((_, b) => [...Array(pad(b)).fill(0), ...Array(lengths[b]).fill(1)]),
      lengths.map((n, b) => [...Array(pad(b)).fill(0), ...Array.from({ length: n }, (_, t) => t)]),
    )
    const fulls = await Promise.all(seqs.map((s) => fullLogits(cfg, weights, s)))
    let worst = 0
    lengths.forEach((n, b) => {
      for (let t = 0; t < n; t++) worst = Math.max(worst, maxAbsErr(row(out.logits, b, pad(b) + t, V), fulls[b].subarray(t * V, (t + 1) * V)))
    })
    for (let s = 0; s < 3; s++) {
      out = await step(
        seqs.map((q, b) => [q[lengths[b] + s]]),
        lengths.map((n, b) => [...Array(pad(b)).fill(0), ...Array(n + s + 1).fill(1)]),
        lengths.map((n) => [n + s]),
      )
      lengths.forEach((n, b) => {
        worst = Math.max(worst, maxAbsErr(row(out.logits, b, 0, V), fulls[b].subarray((n + s) * V, (n + s + 1) * V)))
      })
    }
    expect(worst).toBeLessThan(1e-5)
    await dec.release()
  })

  // ONNX Runtime's GroupQueryAttention takes a multi-token chunk after a past only at batch 1.
  it.each(CASES_D8)(
    '%s: memoryEfficientAttention in an unpadded decoder: prefill and steps (batch 2), a 2-token chunk after a past (batch 1) equal the full forward',
    async (_, cfg) => {
      const V = cfg.vocab_size
      const seqs = [tokens(10, V, 61), tokens(10, V, 62)]
      const g0 = new Graph('w')
      buildGpt(g0, cfg, { batch: 1, seq: 1, training: false, withTargets: false })
      const weights = randomWeights(g0, 31)
      const fulls = await Promise.all(seqs.map((s) => fullLogits(cfg, weights, s)))
      const dec = await decoder(cfg, weights, { attentionKernel: memoryEfficientAttention, padding: false })
      const gqaOps = dec.graph.nodes.filter((n) => n.op === 'GroupQueryAttention').length
      // moas-topk's routed queries sit at scattered slots: they fall back to the composed kernel.
      if (cfg.attention === 'moas-topk') expect(gqaOps).toBe(0)
      else expect(gqaOps, 'every attention call runs on GroupQueryAttention').toBe(attentionCalls(dec.graph).length)
      let worst = 0
      for (const [rows, chunks] of [
        [seqs, [5, 1, 1, 1]],
        [seqs.slice(0, 1), [5, 2, 1, 1]],
      ] as const) {
        const step = await dec.init(rows.length)
        let at = 0
        for (const n of chunks) {
          const out = await step(
            rows.map((s) => s.slice(at, at + n)),
            rows.map(() => Array(at + n).fill(1)),
            rows.map(() => Array.from({ length: n }, (_, t) => at + t)),
          )
          for (let b = 0; b < rows.length; b++)
            for (let t = 0; t < n; t++) worst = Math.max(worst, maxAbsErr(row(out.logits, b, t, V), fulls[b].subarray((at + t) * V, (at + t + 1) * V)))
          at += n
        }
      }
      expect(worst).toBeLessThan(1e-5)
      await dec.release()
    },
  )

  it('memoryEfficientAttention in full-forward graphs equals the composed core for every variant (batch 2, symbolic T)', async () => {
    for (const [name, cfg] of [...CASES_D8, ['mha d=4 (falls back to the composed core)', tiny('mha')] as [string, GptConfig]]) {
      const g0 = new Graph('w')
      buildGpt(g0, cfg, { batch: 1, seq: 1, training: false, withTargets: false })
      const weights = randomWeights(g0, 37)
      const logits = async (kernel?: AttentionKernel) => {
        const g = new Graph('f')
        const m = buildGpt(g, cfg, { batch: 2, seq: 'T', training: false, withTargets: false, attentionKernel: kernel })
        g.output('logits', m.logits)
        const s = await Session.create(g)
        const out = await s.run({ ...feedsOf(weights, g), [m.idx.name]: i64([tokens(11, cfg.vocab_size, 3), tokens(11, cfg.vocab_size, 4)]) })
        await s.release()
        return out.logits.data as Float32Array
      }
      expect(maxAbsErr(await logits(memoryEfficientAttention), await logits()), name).toBeLessThan(1e-5)
    }
  })

  it('GQE attends with k·G + 1 query heads per token in the decoder too; moas-topk routes its queries', () => {
    const cfg = tiny('gqe')
    const g = new Graph('gqe-decoder')
    buildGpt(g, cfg, { batch: DECODER_IO.dims.batch, seq: DECODER_IO.dims.seq, training: false, withTargets: false, kvCache: true })
    const calls = attentionCalls(g)
    expect(calls.reduce((n, c) => n + c.queryHeads, 0) / cfg.n_layer).toBe(cfg.gqe_top_k! * cfg.n_kv_head! + 1)
    expect(
      calls.every((c) => c.keys !== c.seq),
      'keys include the cached past',
    ).toBe(true)
    const topk = new Graph('topk-decoder')
    buildGpt(topk, tiny('moas-topk'), { batch: DECODER_IO.dims.batch, seq: DECODER_IO.dims.seq, training: false, withTargets: false, kvCache: true })
    expect(
      attentionCalls(topk).every((c) => String(c.seq).startsWith('routed_')),
      'each branch attends only its routed queries',
    ).toBe(true)
  })

  it('the attention core is swappable: another kernel (per-head broadcast, no folding) gives the same logits', async () => {
    // A kernel with a different graph: K and V broadcast over the R query heads of a group (rank-5
    // MatMuls), the mask applied with Where instead of an additive 0 / -inf.
    const broadcastKernel: AttentionKernel = (q, kNew, vNew, opts) => {
      const { k, v } = joinPast(kNew, vNew, opts) // no split formulation: join the cache's past and the new positions
      const d = q.shape[4] as number
      const scores = ops.matmul(ops.mul(q, 1 / Math.sqrt(d)), ops.transpose(k, [0, 1, 2, 4, 3])) // [B, G, R, Tq, Tk]
      const visible = ops.equal(opts.mask!, q.graph.scalar(0, q.dtype))
      const probs = ops.softmax(ops.where(visible, scores, q.graph.scalar(-Infinity, q.dtype)), -1)
      return ops.matmul(probs, v)
    }
    for (const v of ['gqa', 'moas-topk', 'gqe'] as const) {
      const cfg = tiny(v)
      const g0 = new Graph('w')
      buildGpt(g0, cfg, { batch: 1, seq: 1, training: false, withTargets: false })
      const weights = randomWeights(g0, 29)
      const logits = async (kernel?: AttentionKernel) => {
        const g = new Graph('k')
        buildGpt(g, cfg, {
          batch: DECODER_IO.dims.batch,
          seq: DECODER_IO.dims.seq,
          training: false,
          withTargets: false,
          kvCache: true,
          attentionKernel: kernel,
        })
        const s = await Session.create(g)
        const d = cfg.n_embd / cfg.n_head
        const past: Record<string, HostTensor> = {}
        for (let i = 0; i < cfg.n_layer; i++) {
          past[DECODER_IO.pastKey(i)] = hostTensor('float32', [2, kvHeadsPerLayer(cfg), 0, d])
          past[DECODER_IO.pastValue(i)] = hostTensor('float32', [2, kvHeadsPerLayer(cfg), 0, d])
        }
        const out = await s.run({
          ...feedsOf(weights, g),
          ...past,
          [DECODER_IO.inputIds]: i64([
            [0, 3, 4, 5],
            [6, 7, 8, 9],
          ]),
          [DECODER_IO.attentionMask]: i64([
            [0, 1, 1, 1],
            [1, 1, 1, 1],
          ]),
          [DECODER_IO.positionIds]: i64([
            [0, 0, 1, 2],
            [0, 1, 2, 3],
          ]),
        })
        await s.release()
        return { logits: out.logits.data as Float32Array, graph: g }
      }
      const ref = await logits()
      const alt = await logits(broadcastKernel)
      expect(alt.graph.nodes.filter((n) => n.op === 'Where').length, 'the other kernel is really in the graph').toBeGreaterThan(
        ref.graph.nodes.filter((n) => n.op === 'Where').length,
      )
      // row 0 position 0 is padding (never read); compare the real positions
      const V = cfg.vocab_size
      expect(maxAbsErr(alt.logits.subarray(V), ref.logits.subarray(V)), v).toBeLessThan(1e-5)
    }
  })

  it("copies the cache once at most: the composed core's join is the present; GroupQueryAttention takes the past as it is", () => {
    // Nodes whose output spans the cached positions and copies them (Concat, Slice); Squeeze, Reshape and
    // Unsqueeze alias their input in ONNX Runtime.
    const copies = (cfg: GptConfig, attentionKernel: AttentionKernel | undefined, cacheOutputs: 'present' | 'appended') => {
      const g = new Graph('copies')
      buildGpt(g, cfg, {
        batch: DECODER_IO.dims.batch,
        seq: DECODER_IO.dims.seq,
        training: false,
        withTargets: false,
        kvCache: true,
        attentionKernel,
        padding: !attentionKernel,
        cacheOutputs,
      })
      return (
        g.nodes.filter(
          (n) =>
            (n.op === 'Concat' || n.op === 'Slice') &&
            n.outputs.some((o) => o.dtype !== 'int64' && o.shape.some((d) => String(d).includes(DECODER_IO.dims.past))),
        ).length / cfg.n_layer
      )
    }
    const [gqa, moas] = [tiny('gqa', { n_embd: 32 }), tiny('moas', { n_embd: 32 })]
    // gqa: K and V joined once each per layer, and that join is also the present
    expect([copies(gqa, undefined, 'present'), copies(gqa, undefined, 'appended')]).toEqual([2, 2])
    // on GroupQueryAttention with only the new positions returned: no copy in the graph (the op's own
    // present output is its one copy); returning the whole present joins it once
    expect([copies(gqa, memoryEfficientAttention, 'appended'), copies(gqa, memoryEfficientAttention, 'present')]).toEqual([0, 2])
    // moas: each branch slices its heads of the past and joins them once (3 × 4), and the present puts the three joins side by side (2)
    expect(copies(moas, undefined, 'present')).toBe(14)
  })

  it('refuses training or loss graphs with a cache, and fixed sizes', () => {
    const cfg = tiny('mha')
    expect(() => buildGpt(new Graph('x'), cfg, { batch: 'batch_size', seq: 'sequence_length', training: true, withTargets: true, kvCache: true })).toThrow(
      /inference decoder graph/,
    )
    expect(() => buildGpt(new Graph('x'), cfg, { batch: 1, seq: 4, training: false, withTargets: false, kvCache: true })).toThrow(/symbolic batch and length/)
    expect(() => buildGpt(new Graph('x'), cfg, { batch: 1, seq: 4, training: false, withTargets: false, padding: false })).toThrow(
      /padding is an option of kvCache/,
    )
  })
})
