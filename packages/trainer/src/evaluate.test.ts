import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildLogitsGraph, CharTokenizer, type GptConfig, paramFeeds, resolveConfig, TokenizerError } from '@moas/gpt'
import { saveCheckpoint } from '@moas/gpt/node'
import { Session } from '@moas/tensor-core'
import { afterEach, describe, expect, it } from 'vitest'
import { evaluateText } from './evaluate-node'
import { initialParams, paramInfos } from './graphs'

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
    for (const [len, targets] of [
      [13, 12],
      [12, 8],
      [5, 4],
    ]) {
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
    await expect(evaluateText(dir, 'abcdefgXYZ')).rejects.toThrow(TokenizerError)
    await expect(evaluateText(dir, 'abcdefgXYZ')).rejects.toThrow(/"X", "Y", "Z".*--skip-unknown/)
    expect((await evaluateText(dir, 'abcdeXfgh', { onUnknown: 'skip' })).tokens).toBe(4)
  })
})

describe('syntheticTaskAccuracy', () => {
  it('counts every determined character whose line lies in its window; a uniform model is right only where the target is the lowest id', async () => {
    const { syntheticCorpus, syntheticDetermined, SYNTHETIC_ALPHABET } = await import('./data/synthetic')
    const { syntheticTaskAccuracy } = await import('./evaluate')
    const tok = new CharTokenizer([...SYNTHETIC_ALPHABET])
    const cfg = resolveConfig({ vocab_size: tok.vocabSize, block_size: 64, n_layer: 1, n_head: 2, n_embd: 8, attention: 'mha' })
    const text = syntheticCorpus({ seed: 1, chars: 4096 })
    const r = await syntheticTaskAccuracy({ config: cfg, params: zeroParams(cfg), tokenizer: tok }, text)
    const T = 64
    const counted = syntheticDetermined(text).filter(
      (d) => d.lineStart >= Math.floor(d.index / T) * T && d.index % T !== 0 && (Math.floor(d.index / T) + 1) * T <= text.length,
    )
    for (const task of ['recall', 'copy', 'brackets'] as const) {
      const mine = counted.filter((d) => d.task === task)
      expect(r[task].total, task).toBe(mine.length)
      // all logits 0: the first candidate wins (id 0, or ')' among the closers)
      const expected = task === 'brackets' ? mine.filter((d) => text[d.index] === ')').length : mine.filter((d) => tok.encode(text[d.index])[0] === 0).length
      expect(r[task].correct, task).toBe(expected)
    }
    expect(r.copy.total).toBeGreaterThan(10)
  })
})
