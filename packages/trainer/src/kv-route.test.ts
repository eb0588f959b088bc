import { CharTokenizer, resolveConfig } from '@moas/gpt'
import { describe, expect, it } from 'vitest'
import { BatchSampler } from './data/batches'
import { EvalSession } from './eval-session'
import { initialParams, PAPER_OPTIM } from './graphs'
import { kvRouteFill } from './kv-route'
import { Xoshiro128 } from './noise'
import { TrainingSession } from './training-session'

const text = 'The cat, the hat.\nA 2nd cat @-@ sat on 3 mats; then it ran away. '.repeat(40)
const tokenizer = CharTokenizer.fromText(text)
const ids = tokenizer.encode(text)
const kv = (over: Record<string, unknown>) =>
  resolveConfig({ vocab_size: tokenizer.vocabSize, block_size: 16, n_layer: 2, n_head: 4, n_embd: 16, dropout: 0, attention: 'moas-kv', ...over } as never)
const source = { vocab: tokenizer.vocab, seed: 7 }
const row = (s: string) => BigInt64Array.from(tokenizer.encode(s), BigInt)

describe('kv_route rule', () => {
  it('sends spaces and punctuation to the coarsest level, a word start to the finest, the rest of a word to the middle one; every layer alike', () => {
    const fill = kvRouteFill(kv({ kv_route: 'rule' }), source, 'kv-route')!
    const x = row('The cat, 2nd.\n@-@ a')
    const out = new BigInt64Array(2 * x.length)
    fill(x, 1, 0, out)
    //            T  h  e  _  c  a  t  ,  _  2  n  d  .  \n @  -  @  _  a
    const want = [0, 1, 1, 2, 0, 1, 1, 2, 2, 0, 1, 1, 2, 2, 2, 2, 2, 2, 0]
    expect(Array.from(out.subarray(0, x.length), Number)).toEqual(want)
    expect(Array.from(out.subarray(x.length), Number)).toEqual(want)
  })

  it("a window's first position starts a word (its previous character is outside the batch)", () => {
    const fill = kvRouteFill(kv({ kv_route: 'rule' }), source, 'kv-route')!
    const x = row('atThat')
    const out = new BigInt64Array(2 * x.length)
    fill(x, 2, 0, out) // rows 'atT' and 'hat'
    expect(Array.from(out.subarray(0, x.length), Number)).toEqual([0, 1, 1, 0, 1, 1])
  })
})

describe('kv_route random', () => {
  const shares = [
    [0.1, 0.6, 0.3],
    [0.5, 0, 0.5],
  ]
  const cfg = kv({ kv_route: 'random', kv_route_shares: shares })
  const x = new BigInt64Array(20_000)

  it("draws each layer's levels with its shares, independently of the text", () => {
    const out = new BigInt64Array(2 * x.length)
    kvRouteFill(cfg, source, 'kv-route')!(x, 1, 0, out)
    shares.forEach((want, layer) => {
      const counts = [0, 0, 0]
      for (const l of out.subarray(layer * x.length, (layer + 1) * x.length)) counts[Number(l)]++
      want.forEach((p, level) => {
        const sd = Math.sqrt((p * (1 - p)) / x.length)
        expect(Math.abs(counts[level] / x.length - p), `layer ${layer} level ${level}`).toBeLessThanOrEqual(4 * sd + 1e-12)
      })
    })
  })

  it('the same (seed, stream, draw) gives the same levels (exact resume, the same eval batches alike); another draw, stream or seed others', () => {
    const levels = (seed: number, stream: 'kv-route' | 'kv-route-eval', draw: number) => {
      const out = new BigInt64Array(2 * 256)
      kvRouteFill(cfg, { vocab: tokenizer.vocab, seed }, stream)!(x.subarray(0, 256), 16, draw, out)
      return Array.from(out, Number).join('')
    }
    expect(levels(7, 'kv-route', 3)).toBe(levels(7, 'kv-route', 3))
    expect(levels(7, 'kv-route', 3)).not.toBe(levels(7, 'kv-route', 4))
    expect(levels(7, 'kv-route', 3)).not.toBe(levels(7, 'kv-route-eval', 3))
    expect(levels(7, 'kv-route', 3)).not.toBe(levels(8, 'kv-route', 3))
  })
})

describe('sessions of a control', () => {
  it('train and evaluate with fed levels; the eval reports the fed mix and repeats exactly; a session without a level source is refused with the fix', async () => {
    const cfg = kv({ kv_route: 'random', kv_route_shares: [0.2, 0.3, 0.5] })
    const params = initialParams(cfg, 0)
    const session = await TrainingSession.create(cfg, { batch: 4, optim: PAPER_OPTIM }, { params, noise: new Xoshiro128(0), kvRoute: source })
    const sampler = new BatchSampler(ids, cfg.block_size, 4, 5)
    const fill = (x: BigInt64Array, y: BigInt64Array) => void sampler.nextInto(x, y)
    const first = await session.update(1e-2, fill)
    for (let i = 0; i < 5; i++) await session.update(1e-2, fill)
    const last = await session.update(1e-2, fill)
    expect(Number.isFinite(first.ce) && Number.isFinite(last.ce)).toBe(true)
    expect(last.ce).toBeLessThan(first.ce)
    const evaluator = await EvalSession.create(cfg, { kvRoute: source })
    const evalSampler = new BatchSampler(ids, cfg.block_size, 8, 1)
    const batches = Array.from({ length: 10 }, () => evalSampler.next())
    const e = await evaluator.meanLoss(await session.params(), batches)
    const again = await evaluator.meanLoss(await session.params(), batches)
    await evaluator.release()
    await session.release()
    expect(e.routing!.share[0][2]).toBeGreaterThan(0.4)
    expect(e.routing!.share[0][2]).toBeLessThan(0.6)
    expect(e.routing!.share[1][0]).toBeGreaterThan(0.12)
    expect(e.routing!.share[1][0]).toBeLessThan(0.28)
    expect(Number.isFinite(e.loss)).toBe(true)
    expect(again.loss).toBe(e.loss) // every eval of the same batches draws the same levels
    await expect(TrainingSession.create(cfg, { batch: 4, optim: PAPER_OPTIM }, { params, noise: new Xoshiro128(0) })).rejects.toThrow(
      /a moas-kv control \(kv_route "random"\) needs its levels fed: pass the tokenizer's vocab and the run's seed \(kvRoute\)/,
    )
  })
})
