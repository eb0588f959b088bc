import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type GptConfig, resolveConfig, saveCheckpoint } from '@moas/gpt'
import { Session } from '@moas/tensor-core'
import { afterEach, describe, expect, it } from 'vitest'
import { CharTokenizer } from './data/charTokenizer'
import { DataError } from './data/errors'
import { Mulberry32 } from './data/prng'
import { buildLogitsGraph, initialParams, paramFeeds, paramInfos } from './engine'
import { evaluateText, evaluateTokens, generate, loadModel, sampleToken } from './evaluate'

const temps: string[] = []
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'moas-eval-'))
  temps.push(d)
  return d
}
afterEach(() => temps.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })))

const vocabText = 'abcdefgh \n.é😀'
const tokenizer = CharTokenizer.fromText(vocabText)
const config = (over: Record<string, unknown> = {}): GptConfig =>
  resolveConfig({ vocab_size: tokenizer.vocabSize, block_size: 4, n_layer: 1, n_head: 2, n_embd: 8, attention: 'mqa', ...over })

async function checkpoint(cfg: GptConfig, params: Map<string, Float32Array>) {
  const dir = join(tempDir(), 'ck')
  await saveCheckpoint(dir, { config: cfg, params, tokenizer: tokenizer.toJSON() })
  return dir
}

const zeroParams = (cfg: GptConfig) => new Map([...initialParams(cfg, 0)].map(([n, v]) => [n, new Float32Array(v.length)]))

describe('evaluateText', () => {
  it('windows: 0, T, 2T, … while s + T + 1 ≤ length; a model with zero weights scores exactly ln V', async () => {
    const cfg = config()
    const dir = await checkpoint(cfg, zeroParams(cfg)) // all logits 0: uniform over V
    // T = 4. 13 chars → (13-1)/4 = 3 windows, 12 targets; 12 chars → only 2 windows fit (the third needs char 12).
    for (const [len, targets] of [[13, 12], [12, 8], [5, 4]]) {
      const r = await evaluateText(dir, 'abcdefgh ab.c'.slice(0, len), { batchSize: 2 })
      expect(r.tokens, `${len} chars`).toBe(targets)
      expect(r.loss).toBeCloseTo(Math.log(tokenizer.vocabSize), 6)
      expect(r.bpc).toBeCloseTo(r.loss / Math.LN2, 12)
    }
    await expect(evaluateText(dir, 'abcd')).rejects.toThrow(/needs at least block_size \+ 1 = 5/)
  })

  it('equals the mean cross entropy computed target by target from the logits, whatever the batch size', async () => {
    const cfg = config()
    const params = initialParams(cfg, 3)
    for (const p of params.values()) for (let i = 0; i < p.length; i++) p[i] *= 20 // far from uniform
    const dir = await checkpoint(cfg, params)
    const text = 'ab😀cdé efgh.\nhgfedcba abc'
    const ids = tokenizer.encode(text)
    // Independent path: full logits of each window, log-softmax in float64, targets s+1 .. s+T.
    const session = await Session.create(buildLogitsGraph(cfg))
    const feeds = paramFeeds(params, paramInfos(cfg))
    let sum = 0
    let n = 0
    for (let s = 0; s + 5 <= ids.length; s += 4) {
      feeds.idx = { dtype: 'int64', shape: [1, 4], data: BigInt64Array.from(ids.slice(s, s + 4), BigInt) }
      const logits = (await session.run(feeds)).logits.data as Float32Array
      for (let t = 0; t < 4; t++) {
        const row = Array.from(logits.subarray(t * cfg.vocab_size, (t + 1) * cfg.vocab_size))
        const max = Math.max(...row)
        const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0))
        sum += lse - row[ids[s + t + 1]]
        n++
      }
    }
    const want = sum / n
    for (const batchSize of [1, 2, 5]) {
      const r = await evaluateText(dir, text, { batchSize })
      expect(r.tokens).toBe(n)
      expect(r.loss).toBeCloseTo(want, 5)
    }
    expect(want).toBeGreaterThan(0.1)
  })

  it('refuses characters outside the vocabulary unless asked to skip them', async () => {
    const cfg = config()
    const dir = await checkpoint(cfg, zeroParams(cfg))
    await expect(evaluateText(dir, 'abcdefgXYZ')).rejects.toThrow(DataError)
    await expect(evaluateText(dir, 'abcdefgXYZ')).rejects.toThrow(/"X", "Y", "Z".*--skip-unknown/)
    expect((await evaluateText(dir, 'abcdeXfgh', { onUnknown: 'skip' })).tokens).toBe(4)
  })
})

describe('checkpoint tokenizer', () => {
  it('round-trips through a checkpoint (astral and accented characters included)', async () => {
    const cfg = config()
    const dir = await checkpoint(cfg, zeroParams(cfg))
    const model = await loadModel(dir)
    expect(model.tokenizer.vocab).toEqual(tokenizer.vocab)
    const text = 'é😀 abc\n.'
    expect(model.tokenizer.decode(model.tokenizer.encode(text))).toBe(text)
    expect([...model.tokenizer.encode(text)]).toEqual([...tokenizer.encode(text)])
  })
})

describe('generate', () => {
  it('samples reproducibly per seed, greedy at temperature 0, and keeps within the vocabulary', async () => {
    const cfg = config()
    const params = initialParams(cfg, 1)
    for (const p of params.values()) for (let i = 0; i < p.length; i++) p[i] *= 30
    const dir = await checkpoint(cfg, params)
    const a = await generate(dir, { prompt: 'ab', tokens: 12, seed: 5 })
    expect([...a.completion]).toHaveLength(12)
    expect((await generate(dir, { prompt: 'ab', tokens: 12, seed: 5 })).completion).toBe(a.completion)
    const g1 = await generate(dir, { prompt: 'ab', tokens: 6, temperature: 0, seed: 1 })
    const g2 = await generate(dir, { prompt: 'ab', tokens: 6, temperature: 0, seed: 2 })
    expect(g1.completion).toBe(g2.completion)
    for (const ch of a.completion) expect(tokenizer.vocab).toContain(ch)
    await expect(generate(dir, { prompt: 'ZZ', tokens: 1 })).rejects.toThrow(DataError)
  })

  it('sampleToken: greedy, top-k and temperature', () => {
    const rng = new Mulberry32(0)
    const logits = [0, 3, 1, 2.9]
    expect(sampleToken(logits, 0, undefined, rng)).toBe(1)
    const seen = new Set(Array.from({ length: 200 }, () => sampleToken(logits, 1, 2, rng)))
    expect([...seen].sort()).toEqual([1, 3]) // only the two most likely
    const counts = [0, 0, 0, 0]
    for (let i = 0; i < 4000; i++) counts[sampleToken(logits, 1, undefined, rng)]++
    const p0 = 1 / (1 + Math.exp(3) + Math.exp(1) + Math.exp(2.9))
    expect(counts[0] / 4000).toBeCloseTo(p0, 1)
  })
})
