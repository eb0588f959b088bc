/** DecoderSession and generate against the full-recompute path (LogitsSession), per variant. */
import { buildLogitsGraph, CharTokenizer, DECODER_IO, type GptConfig, kvCacheBytesPerToken, resolveConfig, type Variant } from '@moas/gpt'
import { randomWeights } from '@moas/gpt/testing'
import { describe, expect, it } from 'vitest'
import { DecoderSession } from './decoder'
import { generate } from './generate'
import { LogitsSession } from './logits'
import { argmax } from './sampling'

const tokenizer = CharTokenizer.fromText('abcdefghij klmnop')
const tiny = (attention: Variant): GptConfig =>
  resolveConfig({ vocab_size: tokenizer.vocabSize, block_size: 24, n_layer: 2, n_head: 4, n_embd: 16, dropout: 0, attention })

const weights = (cfg: GptConfig) => randomWeights(buildLogitsGraph(cfg), 11) as Map<string, Float32Array>

/** Greedy continuation by full recompute: the reference. */
async function greedyReference(cfg: GptConfig, params: Map<string, Float32Array>, prompt: number[], n: number): Promise<number[]> {
  const s = await LogitsSession.create({ config: cfg, params })
  const ids = [...prompt]
  for (let i = 0; i < n; i++) ids.push(argmax(await s.next(ids)))
  await s.release()
  return ids.slice(prompt.length)
}

describe('DecoderSession', () => {
  for (const v of ['mha', 'gqa', 'moas', 'moas-topk', 'gqe'] as const) {
    it(`${v}: greedy decoding with the cache equals full recompute, for a left-padded batch`, async () => {
      const cfg = tiny(v)
      const params = weights(cfg)
      const prompts = ['abc de', 'fg', 'hijklmn']
      const session = await DecoderSession.create({ config: cfg, params })
      const r = await generate(session, tokenizer, prompts, { temperature: 0, maxNewTokens: 10 })
      for (const [b, p] of prompts.entries()) expect(r.ids[b], p).toEqual(await greedyReference(cfg, params, [...tokenizer.encode(p)], 10))
      expect(r.cacheBytes).toBe(kvCacheBytesPerToken(cfg) * prompts.length * session.pastLength)
      expect(r.slides).toBe(0)
      await session.release()
    })
  }

  it('moas-kv keeps only what each token wrote: prefill + steps equal full recompute, and the bytes held follow the choices', async () => {
    const cfg = resolveConfig({ vocab_size: tokenizer.vocabSize, block_size: 24, n_layer: 2, n_head: 4, n_embd: 16, dropout: 0, attention: 'moas-kv' })
    const params = weights(cfg)
    const session = await DecoderSession.create({ config: cfg, params }, { routing: true })
    expect(session.levels).toBe(true)
    const reference = await LogitsSession.create({ config: cfg, params })
    const V = cfg.vocab_size
    const d = cfg.n_embd / cfg.n_head
    const ids = [...tokenizer.encode('abc de fg')]
    let bytes = 0 // Σ over positions and layers of the chosen level's heads · d · 4 bytes · (K and V)
    const count = (step: Awaited<ReturnType<typeof session.prefill>>) => {
      for (let i = 0; i < cfg.n_layer; i++)
        for (const c of step.routing[DECODER_IO.chosen(i)].data as BigInt64Array) bytes += cfg.kv_levels![Number(c)] * d * 4 * 2
    }
    let step = await session.prefill([ids])
    count(step)
    const levelsSeen = new Set<bigint>()
    for (let t = 0; t < 8; t++) {
      const last = step.logits.subarray((step.length - 1) * V, step.length * V)
      const want = await reference.next(ids)
      expect(Math.max(...Array.from(last, (x, v) => Math.abs(x - want[v]))), `position ${ids.length}`).toBeLessThan(1e-5)
      expect(session.cacheBytes).toBe(bytes)
      const next = argmax(last)
      ids.push(next)
      step = await session.step([next])
      count(step)
      for (let i = 0; i < cfg.n_layer; i++) for (const c of step.routing[DECODER_IO.chosen(i)].data as BigInt64Array) levelsSeen.add(c)
    }
    // the cache really is smaller than the full layout when coarser levels were chosen
    expect(levelsSeen.size).toBeGreaterThan(1)
    expect(session.cacheBytes).toBeLessThan(kvCacheBytesPerToken(cfg) * session.pastLength)
    await session.release()
    await reference.release()
  })

  it('moas-kv, a left-padded batch whose rows chose different levels: each row decodes as if alone, the same text as the full layout', async () => {
    const cfg = resolveConfig({ vocab_size: tokenizer.vocabSize, block_size: 24, n_layer: 2, n_head: 4, n_embd: 16, dropout: 0, attention: 'moas-kv' })
    const params = weights(cfg)
    const prompts = ['abc de', 'fg', 'hijklmn']
    const levels = await DecoderSession.create({ config: cfg, params }, { routing: true })
    const full = await DecoderSession.create({ config: cfg, params }, { cache: 'full' })
    expect([levels.levels, full.levels]).toEqual([true, false])
    // ragged: the rows' prompts chose different level mixes
    const pre = await levels.prefill(prompts.map((p) => [...tokenizer.encode(p)]))
    const L = pre.length
    const mix = prompts.map((p, b) => {
      const c = pre.routing[DECODER_IO.chosen(0)].data as BigInt64Array
      return Array.from(c.subarray(b * L + L - p.length, (b + 1) * L), Number).join('')
    })
    expect(new Set(mix.map((m) => [...m].sort().join(''))).size).toBeGreaterThan(1)
    const r = await generate(levels, tokenizer, prompts, { temperature: 0, maxNewTokens: 10 })
    const f = await generate(full, tokenizer, prompts, { temperature: 0, maxNewTokens: 10 })
    for (const [b, p] of prompts.entries()) {
      expect(r.ids[b], p).toEqual(await greedyReference(cfg, params, [...tokenizer.encode(p)], 10))
      expect(f.ids[b], p).toEqual(r.ids[b])
    }
    expect(r.cacheBytes).toBeLessThan(f.cacheBytes)
    await levels.release()
    await full.release()
    await expect(DecoderSession.create({ config: tiny('mha'), params: weights(tiny('mha')) }, { cache: 'levels' })).rejects.toThrow(
      /cache 'levels' keeps what each token wrote, for variants that route it \(moas-kv\)/,
    )
  })

  it("attention 'memory-efficient' (GroupQueryAttention, head size 8) decodes like full recompute, and refuses prompts of different lengths", async () => {
    for (const v of ['gqa', 'gqe', 'moas'] as const) {
      const cfg = resolveConfig({ vocab_size: tokenizer.vocabSize, block_size: 24, n_layer: 2, n_head: 4, n_embd: 32, dropout: 0, attention: v })
      const params = weights(cfg)
      const session = await DecoderSession.create({ config: cfg, params }, { attention: 'memory-efficient' })
      expect(session.padding).toBe(false)
      const prompts = ['abc de', 'fghijk']
      const r = await generate(session, tokenizer, prompts, { temperature: 0, maxNewTokens: 8 })
      for (const [b, p] of prompts.entries()) expect(r.ids[b], `${v} ${p}`).toEqual(await greedyReference(cfg, params, [...tokenizer.encode(p)], 8))
      await expect(session.prefill([[1, 2], [3]])).rejects.toThrow(/takes no padding, and the prompts have lengths 2, 1/)
      await session.release()
    }
    await expect(DecoderSession.create({ config: tiny('mha'), params: weights(tiny('mha')) }, { attention: 'flash' as never })).rejects.toThrow(
      /'flash' is not a kernel/,
    )
  })

  it('keeps its own cache (the graph returns only the new positions) like full recompute while the buffers grow past 256 positions, across batch shapes', async () => {
    const cfg = resolveConfig({ vocab_size: tokenizer.vocabSize, block_size: 600, n_layer: 2, n_head: 4, n_embd: 16, dropout: 0, attention: 'moas' })
    const params = weights(cfg)
    const session = await DecoderSession.create({ config: cfg, params })
    const long = Array.from({ length: 250 }, (_, i) => (i * 7) % tokenizer.vocabSize)
    const r = await generate(session, tokenizer, [tokenizer.decode(long)], { temperature: 0, maxNewTokens: 12 })
    expect(r.ids[0]).toEqual(await greedyReference(cfg, params, long, 12)) // the cache grows from 250 to 261 positions: its buffers regrow at 257
    expect(session.cacheBytes).toBe(kvCacheBytesPerToken(cfg) * 261) // the last token is returned, not yet cached
    const prompts = ['abc de', 'fghijklm', 'nop']
    const again = await generate(session, tokenizer, prompts, { temperature: 0, maxNewTokens: 6 }) // the same buffers, a [3, …] layout
    for (const [b, p] of prompts.entries()) expect(again.ids[b], p).toEqual(await greedyReference(cfg, params, [...tokenizer.encode(p)], 6))
    await session.release()
  })

  it('refuses a context beyond block_size with a clear error, and generate slides its window instead', async () => {
    const cfg = tiny('gqa')
    const params = weights(cfg)
    const session = await DecoderSession.create({ config: cfg, params })
    await expect(session.prefill([Array(25).fill(1)])).rejects.toThrow(/25 positions exceeds the model's block_size of 24/)
    await session.prefill([Array(24).fill(1)])
    await expect(session.step([2])).rejects.toThrow(/25 positions exceeds/)
    const r = await generate(session, tokenizer, ['abcdefghij'], { temperature: 0, maxNewTokens: 40 })
    expect(r.ids[0]).toHaveLength(40)
    expect(r.slides).toBeGreaterThan(0)
    // The first 14 new tokens fit the context: they equal full recompute.
    expect(r.ids[0].slice(0, 14)).toEqual(await greedyReference(cfg, params, [...tokenizer.encode('abcdefghij')], 14))
    await session.release()
  })

  it('returns routing outputs when asked (gates and chosen experts per layer)', async () => {
    const cfg = tiny('moas-topk')
    const session = await DecoderSession.create({ config: cfg, params: weights(cfg) }, { routing: true })
    const out = await session.prefill([[1, 2, 3]])
    expect(Object.keys(out.routing).sort()).toEqual(['chosen.0', 'chosen.1', 'gates.0', 'gates.1'])
    expect(out.routing['gates.0'].shape).toEqual([1, 3, 3])
    await session.release()
  })

  it('checks its inputs', async () => {
    const cfg = tiny('mha')
    const session = await DecoderSession.create({ config: cfg, params: weights(cfg) })
    await expect(session.step([1])).rejects.toThrow(/step before prefill/)
    await expect(session.prefill([[1], []])).rejects.toThrow(/prompt 1 is empty/)
    await session.prefill([[1], [2]])
    await expect(session.step([1])).rejects.toThrow(/1 tokens for a batch of 2 rows/)
    await expect(generate(session, tokenizer, ['xyz'], { maxNewTokens: 1 })).rejects.toThrow(/not in the tokenizer vocabulary/)
    await session.release()
  })
})
