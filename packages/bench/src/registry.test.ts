/**
 * The variant registry walked through every consumer: each row of @moas/gpt's VARIANT_TABLE is built,
 * decoded with the KV cache against full recompute, exported and reloaded, routed (where it routes),
 * evaluated by the trainer and laid out for the benches. A row that one of them cannot handle fails here.
 */
import { composedAttention } from '@moas/attention-schemes'
import {
  choiceLabels,
  isRouted,
  kvCacheBytesPerToken,
  kvHeadsPerLayer,
  MAIN_VARIANTS,
  queryHeadsPerToken,
  resolveConfig,
  VARIANT_TABLE,
  VARIANTS,
} from '@moas/gpt'
import { randomWeights } from '@moas/gpt/testing'
import {
  buildLogitsGraph,
  CharTokenizer,
  DecoderSession,
  exportModelFiles,
  LogitsSession,
  memoryFolderReader,
  openModelFolder,
  readModelFolder,
  routeText,
  routingStats,
} from '@moas/inference'
import { Session } from '@moas/tensor-core'
import { EvalSession } from '@moas/trainer'
import { describe, expect, it } from 'vitest'
import { paperConfig, TRAIN_VARIANTS } from './paper'
import { attentionCallsGraph, coreCalls, prefillGptConfig } from './prefillWorker'

const tokenizer = CharTokenizer.fromText('abcdefgh ij.\n')
const tiny = (attention: string) =>
  resolveConfig({ vocab_size: tokenizer.vocabSize, block_size: 16, n_layer: 2, n_head: 4, n_embd: 16, n_kv_head: 2, dropout: 0, attention })
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0)

describe('the variant registry, row by row through every consumer', () => {
  for (const v of VARIANTS) {
    it(`${v}: builds, decodes like full recompute, exports, routes, evaluates and lays out for the benches`, async () => {
      const spec = VARIANT_TABLE[v]
      const cfg = tiny(v)
      expect(cfg.attention).toBe(v)
      const params = randomWeights(buildLogitsGraph(cfg), 3) as Map<string, Float32Array>

      // decode == forward: prefill then three steps, every step's logits against a full recompute
      const prompt = [...tokenizer.encode('abc d')]
      const decoder = await DecoderSession.create({ config: cfg, params }, { routing: isRouted(v) })
      const reference = await LogitsSession.create({ config: cfg, params })
      const ids = [...prompt]
      let step = await decoder.prefill([prompt])
      const V = cfg.vocab_size
      for (let i = 0; i < 3; i++) {
        const last = step.logits.subarray((step.length - 1) * V, step.length * V)
        expect(maxAbsDiff(last, await reference.next(ids)), `${v} position ${ids.length}`).toBeLessThan(1e-5)
        const next = last.indexOf(Math.max(...last))
        ids.push(next)
        step = await decoder.step([next])
      }
      // the cache the graph returned has the heads the registry says (read off the session's tensors); a
      // level cache holds each token's own level instead, never more than the full layout
      expect(decoder.levels).toBe(!!spec.levelCache)
      if (decoder.levels) expect(decoder.cacheBytes).toBeLessThanOrEqual(kvCacheBytesPerToken(cfg) * decoder.pastLength)
      else expect(decoder.cachedHeads).toBe(kvHeadsPerLayer(cfg))
      await decoder.release()
      await reference.release()

      // export: the folder's own graph decodes the same greedy tokens as the session built from weights
      const files = exportModelFiles({ config: cfg, params, tokenizer, extra: {}, where: 'registry test' })
      const config = JSON.parse(files['config.json'] as string)
      expect(config.moas.kv_cache).toBe(spec.cacheLayout(cfg))
      const folder = await openModelFolder(await readModelFolder(memoryFolderReader(files), 'registry test'))
      let out = await folder.prefill([prompt])
      const folderIds = [...prompt]
      for (let i = 0; i < 3; i++) {
        const last = out.logits.subarray((out.length - 1) * V, out.length * V)
        folderIds.push(last.indexOf(Math.max(...last)))
        out = await folder.step([folderIds[folderIds.length - 1]])
      }
      expect(folderIds).toEqual(ids)
      await folder.release()

      // routing: routed rows give choices within their labels; unrouted rows are refused by the analysis
      const routing = await DecoderSession.create({ config: cfg, params }, { routing: true })
      const text = 'abc de.\nfgh'
      if (isRouted(v)) {
        const labels = choiceLabels(cfg)
        expect(labels.length).toBeGreaterThan(1)
        const choices = await routeText(routing, tokenizer, text)
        expect(choices).toHaveLength(text.length)
        for (const at of choices) for (const c of at) expect(c.choice).toBeLessThan(labels.length)
        const stats = routingStats(cfg, text, choices)
        for (const layer of stats.layers) expect(layer.share.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6)
      } else {
        expect(choiceLabels(cfg)).toEqual([])
        await expect(routeText(routing, tokenizer, text)).rejects.toThrow(/has no router/)
      }
      await routing.release()

      // the trainer's eval: a finite loss, with a routing summary exactly for routed rows
      const evalSession = await EvalSession.create(cfg)
      const x = BigInt64Array.from({ length: 2 * cfg.block_size }, (_, i) => BigInt(i % V))
      const y = BigInt64Array.from({ length: 2 * cfg.block_size }, (_, i) => BigInt((i + 1) % V))
      const r = await evalSession.meanLoss(params, [{ x, y }])
      expect(Number.isFinite(r.loss)).toBe(true)
      expect(r.routing !== undefined).toBe(isRouted(v))
      await evalSession.release()

      // benches: the core calls (where fixed) cover exactly the query heads the row counts, and run
      const shape = { n_layer: 1, n_head: 4, n_kv_head: 2, n_embd: 16, vocab: V }
      expect(prefillGptConfig(v, shape, 8).attention).toBe(v)
      if (spec.coreCalls) {
        const calls = coreCalls(v, shape)
        expect(calls.reduce((n, c) => n + c.G * c.R, 0)).toBe(queryHeadsPerToken(prefillGptConfig(v, shape, 8)))
        const core = attentionCallsGraph(`registry-${v}`, calls, 8, 4, composedAttention)
        const session = await Session.create(core.graph)
        const outputs = await session.run(core.feeds)
        expect(Object.keys(outputs)).toHaveLength(calls.length)
        await session.release()
      } else expect(() => coreCalls(v, shape)).toThrow(/no fixed attention-core layout/)
      if (TRAIN_VARIANTS.includes(v)) expect(paperConfig(v).attention).toBe(v)
    })
  }

  it('baselines are variants of the table, and the main variants leave out exactly the ablations', () => {
    for (const v of VARIANTS) {
      const b = VARIANT_TABLE[v].baseline
      if (b !== null) expect(VARIANTS).toContain(b)
    }
    expect(VARIANTS.filter((v) => !MAIN_VARIANTS.includes(v))).toEqual(['gqe-hard-only', 'gqe-no-renorm', 'gqe-no-shared'])
  })
})
