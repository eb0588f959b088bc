import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CharTokenizer, paramCounts, resolveConfig } from '@moas/gpt'
import { afterEach, describe, expect, it } from 'vitest'
import { type CompareOptions, compare } from './compare'
import { paperSplit } from './data/split'
import { syntheticCorpus } from './data/synthetic'
import { type Dataset, TRAIN_PRESETS } from './presets'
import { hedgesG, welchTTest } from './stats'

const temps: string[] = []
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'moas-compare-'))
  temps.push(d)
  return d
}
afterEach(() => temps.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })))

const text = syntheticCorpus({ seed: 4, chars: 12_000 })
const tokenizer = CharTokenizer.fromText(text)
const split = paperSplit(text)
const data: Dataset = { name: 'synthetic', tokenizer, train: tokenizer.encode(split.train), val: tokenizer.encode(split.val), source: 'test' }
const model = { block_size: 16, n_layer: 1, n_head: 2, n_embd: 16, dropout: 0.1 }
const options = (out: string, over: Partial<CompareOptions> = {}): CompareOptions => ({
  out,
  variants: ['mha', 'moas'],
  seeds: [0, 1],
  preset: 'smoke',
  model,
  data,
  protocol: { ...TRAIN_PRESETS.smoke, steps: 4, batch_size: 2, eval_interval: 2, eval_iters: 2, checkpoint_interval: 2 },
  ...over,
})

describe('compare', () => {
  it('trains every (variant, seed), tabulates mean ± std and Welch tests, writes md/json/svg; resumable', async () => {
    const out = tempDir()
    const ctl = new AbortController()
    const seen: string[] = []
    // Stop in the middle of the third run (mha, seed 1).
    const first = await compare(
      options(out, {
        signal: ctl.signal,
        onRun: (r) => seen.push(`${r.variant}/${r.seed}:${r.status}`),
        onRecord: (v, s, r) => v === 'mha' && s === 1 && r.step === 1 && ctl.abort(),
      }),
    )
    expect(seen).toEqual(['mha/0:new', 'moas/0:new', 'mha/1:new'])
    expect(first.complete).toBe(false)
    expect(first.missing).toEqual(['mha/seed-1', 'moas/seed-1'])

    seen.length = 0
    const r = await compare(options(out, { onRun: (x) => seen.push(`${x.variant}/${x.seed}:${x.status}`) }))
    expect(seen).toEqual(['mha/0:done', 'moas/0:done', 'mha/1:resume', 'moas/1:new'])
    expect(r.complete).toBe(true)
    const [mha, moas] = r.variants
    expect(mha.params.total).toBe(paramCounts(resolveConfig({ ...model, vocab_size: tokenizer.vocabSize, attention: 'mha' })).total)
    expect(moas.params.total).toBeGreaterThan(mha.params.total)
    expect(mha.full_val_loss!.values).toHaveLength(2)
    expect(mha.full_val_loss!.values[0]).not.toBe(mha.full_val_loss!.values[1]) // seeds differ
    expect(mha.curve.map((c) => c.step)).toEqual([2, 4])
    for (const c of mha.curve) expect(c.min).toBeLessThanOrEqual(c.mean)
    const w = welchTTest(moas.full_val_loss!.values, mha.full_val_loss!.values)!
    expect(moas.vs_baseline!.full).toEqual(w)
    expect(moas.vs_baseline!.hedges_g).toBe(hedgesG(moas.full_val_loss!.values, mha.full_val_loss!.values))
    expect(mha.query_heads_per_token).toBe(model.n_head)
    expect(moas.query_heads_per_token).toBe(3 * model.n_head)
    expect(moas.vs_baseline!.text).toMatch(/(beyond|within) seed noise/)
    expect(mha.vs_baseline).toBeNull()

    const md = readFileSync(join(out, 'results.md'), 'utf8')
    expect(md).toMatch(/\| moas \| [\d,]+ \([\d,]+\) \| \d+ \| – \| – \| \d\.\d{4} ± \d\.\d{4} \|/) // no decode columns without a prober
    // Δ with the Welch interval, as numbers the stats give.
    const ci = `[${w.ci95.map((x) => `${x >= 0 ? '+' : ''}${x.toFixed(4)}`).join(', ')}]`
    expect(md).toContain(ci)
    expect(md).toContain("Welch's two-sided t-test")
    expect(JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')).variants).toHaveLength(2)
    const svg = readFileSync(join(out, 'val_loss.svg'), 'utf8')
    // a mean line per variant, and a thin line per (variant, seed)
    expect(svg.match(/<polyline /g)).toHaveLength(2 + 4)
    expect(svg).toContain('<title>moas, seed 1</title>')
    expect(moas.seed_curves.map((c) => [c.seed, c.curve.length])).toEqual(moas.seeds.map((seed) => [seed, moas.curve.length]))

    // A rerun of a finished comparison trains nothing and gives the same table.
    seen.length = 0
    const again = await compare(options(out, { onRun: (x) => seen.push(x.status) }))
    expect(seen).toEqual(['done', 'done', 'done', 'done'])
    expect(again.variants).toEqual(r.variants)
  })

  it('with one seed gives no verdict', async () => {
    const r = await compare(options(tempDir(), { seeds: [3], variants: ['mha', 'mqa'] }))
    expect(r.variants[1].vs_baseline!.text).toBe('n/a: needs ≥2 seeds')
    expect(r.variants[1].full_val_loss!.std).toBeNull()
  })
})
