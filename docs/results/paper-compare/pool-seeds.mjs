// Pools the per-run summaries in logs/ (what `moas compare` writes as summary.json in each run directory)
// into one table per variant over every seed found, with the statistics `moas compare` uses (@moas/trainer's
// Welch test and Hedges' g). Needed because seed 0 (2026-11-22) and seeds 1-2 (2026-12-03) were trained on
// different machines and only seed 0's logs and summaries were kept, not its checkpoints, so
// `moas compare --collect` (which re-reads run directories) cannot take all three.
// Writes pooled.md (the table and the tests), val_loss-pooled.svg (mean, min-max band and every seed's
// curve per variant, for the paper's three) and val_loss-context.svg (mha and the context rows) next to
// itself. Time per run is the sum of its logged update and evaluation wall times (log.jsonl `ms` and
// `eval_ms`): the final full-split evaluation is not logged, so not counted, and time a run spent
// suspended (SIGSTOP, to take a clean benchmark) inside an update is.
// Run after `pnpm build`: node docs/results/paper-compare/pool-seeds.mjs
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { hedgesG, mean, sampleStd, valLossChart, welchTTest } from '../../../packages/trainer/dist/index.js'

const here = dirname(fileURLToPath(import.meta.url))
const PAPER = { mha: 2.294, 'static-moas': 2.3093, moas: 2.3074 } // the paper's single runs at update 500 (seed-facts)
const runs = readdirSync(join(here, 'logs')).filter((f) => f.endsWith('.summary.json')).map((f) => JSON.parse(readFileSync(join(here, 'logs', f), 'utf8')))
// The paper's table (mha, static-moas, moas) and the context rows (gqa, mqa, moas-topk: seeds 0-2).
const MAIN = ['mha', 'static-moas', 'moas']
const CONTEXT = ['gqa', 'mqa', 'moas-topk']
const order = [...MAIN, ...CONTEXT].filter((v) => runs.some((r) => r.variant === v))
const by = Object.fromEntries(order.map((v) => [v, runs.filter((r) => r.variant === v && r.steps === 500).sort((a, b) => a.seed - b.seed)]))
const fmt = (xs) => (xs.length > 1 ? `${mean(xs).toFixed(4)} ± ${sampleStd(xs).toFixed(4)}` : xs.length ? xs[0].toFixed(4) : '–')
const signed = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(4)}`
const p = (w) => (w.p < 0.001 ? w.p.toExponential(1) : w.p.toFixed(3))

// Logged machine time of one run (minutes): every update's ms plus every evaluation's eval_ms.
const minutes = (r) => readFileSync(join(here, 'logs', `${r.variant}-seed${r.seed}.jsonl`), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).reduce((t, x) => t + (x.ms ?? 0) + (x.eval_ms ?? 0), 0) / 60000
let totalMinutes = 0
const lines = ['| variant | seeds | val loss @500 (20 batches, paper metric) | full val split | paper @500 | ms/iter per seed | logged wall min per seed |', '|---|---|---:|---:|---:|---:|---:|']
for (const v of order) {
  const rs = by[v]
  const mins = rs.map(minutes)
  totalMinutes += mins.reduce((a, b) => a + b, 0)
  lines.push(`| ${v}${CONTEXT.includes(v) ? ' (context)' : ''} | ${rs.map((r) => r.seed).join(', ')} | ${fmt(rs.map((r) => r.final_val_loss))} | ${fmt(rs.map((r) => r.full_val_loss))} | ${PAPER[v]?.toFixed(4) ?? '–'} | ${rs.map((r) => Math.round(r.ms_per_iter)).join(', ')} | ${mins.map((m) => m.toFixed(0)).join(', ')} |`)
}
lines.push('', `Total logged wall time: ${(totalMinutes / 60).toFixed(1)} h over ${order.reduce((n, v) => n + by[v].length, 0)} runs.`)
lines.push('', '| comparison (full val split) | Δ mean [Welch 95 % CI] | t, df | p | Hedges\' g | verdict (α 0.05) |', '|---|---|---|---:|---:|---|')
const pairs = [['static-moas', 'mha'], ['moas', 'mha'], ['moas', 'static-moas'], ['gqa', 'mha'], ['mqa', 'mha'], ['moas-topk', 'mha'], ['moas-topk', 'moas']].filter(([a, b]) => by[a]?.length && by[b]?.length)
for (const [a, b] of pairs) {
  const xa = by[a].map((r) => r.full_val_loss)
  const xb = by[b].map((r) => r.full_val_loss)
  const w = welchTTest(xa, xb)
  const g = hedgesG(xa, xb)
  if (!w) {
    lines.push(`| ${a} − ${b} | ${signed(mean(xa) - mean(xb))} | n/a | n/a | n/a | needs ≥ 2 seeds each |`)
    continue
  }
  const verdict = w.p < 0.05 ? `${w.diff < 0 ? 'lower' : 'higher'} beyond seed noise` : 'within seed noise'
  lines.push(`| ${a} − ${b} | ${signed(w.diff)} [${signed(w.ci95[0])}, ${signed(w.ci95[1])}] | ${w.t.toFixed(2)}, ${w.df.toFixed(1)} | ${p(w)} | ${g === null ? 'n/a' : g.toFixed(2)} | ${verdict} |`)
}
writeFileSync(join(here, 'pooled.md'), `${lines.join('\n')}\n`)
const seriesOf = (variants) => variants.filter((v) => by[v]?.length).map((v) => {
  const steps = [...new Set(by[v].flatMap((r) => r.curve.map((c) => c.step)))].sort((a, b) => a - b)
  return {
    name: v,
    points: steps.map((step) => {
      const vals = by[v].flatMap((r) => r.curve.filter((c) => c.step === step).map((c) => c.val_loss))
      return { step, mean: mean(vals), min: Math.min(...vals), max: Math.max(...vals) }
    }),
    seeds: by[v].map((r) => ({ seed: r.seed, points: r.curve.map((c) => ({ step: c.step, value: c.val_loss })) })),
  }
})
const chart = (variants, file) => {
  const seedList = [...new Set(variants.flatMap((v) => (by[v] ?? []).map((r) => r.seed)))].sort((a, b) => a - b)
  writeFileSync(join(here, file), valLossChart(seriesOf(variants), { title: `val loss, paper preset on wikitext-2 (seeds ${seedList.join(', ')})`, xLabel: 'update', yLabel: 'val loss (nats, 20 batches)' }))
  return file
}
// The paper's three variants; the context rows against mha (its seeds 0-4) in a chart of their own.
const charts = [chart(MAIN, 'val_loss-pooled.svg'), ...(CONTEXT.some((v) => by[v]?.length) ? [chart(['mha', ...CONTEXT], 'val_loss-context.svg')] : [])]
process.stdout.write(`${lines.join('\n')}\n\nwrote pooled.md and ${charts.join(' and ')} in ${here}\n`)
