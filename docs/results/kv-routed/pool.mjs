// The moas-kv study (issue 28): loss against KV bytes per token. Reads each run's log and summary
// (summary.json as `moas compare --collect` writes it: the full-validation-split loss of the final model)
// from logs/ here, and the static points mha, gqa (n_kv_head 2) and mqa from ../paper-compare/logs, the
// committed runs of the same protocol. Writes results.md (table and Welch tests) and pareto.svg next to
// itself. A point's KV bytes: the static variants' cache (n_kv_head / n_head of MHA's); moas-kv's as
// measured at its final evaluation (kv_fraction in log.jsonl: the levels its routers chose on 20 random
// validation batches of 12 × 256 characters, averaged over layers).
// Run after `pnpm build`: node docs/results/kv-routed/pool.mjs
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { kvCacheBytesPerToken, PRESETS, paramCounts, resolveConfig } from '../../../packages/gpt/dist/index.js'
import { hedgesG, mean, paretoChart, sampleStd, studentTQuantile, welchTTest } from '../../../packages/trainer/dist/index.js'

const here = dirname(fileURLToPath(import.meta.url))
const paper = (over) => resolveConfig({ ...PRESETS.paper, vocab_size: 283, ...over })
const MHA_BYTES = kvCacheBytesPerToken(paper({ attention: 'mha' }))
// The random control's level mix: per layer, the shares the ρ 0.33 routers chose at their final evaluation
// (mean over seeds 0–2, rows renormalized); 0.334 of MHA's bytes.
export const RANDOM_SHARES = [
  [0.0828, 0.6826, 0.2346],
  [0.0886, 0.528, 0.3834],
  [0.0946, 0.4879, 0.4175],
  [0.0539, 0.7255, 0.2206],
]
// name → [where its logs are, its model config, kind: static (its cache is its bytes), routed or control (measured)]
const POINTS = [
  ['mha', '../paper-compare/logs', { attention: 'mha' }, 'static'],
  ['gqa-kv3', 'logs', { attention: 'gqa', n_kv_head: 3 }, 'static'],
  ['gqa', '../paper-compare/logs', { attention: 'gqa' }, 'static'],
  ['mqa', '../paper-compare/logs', { attention: 'mqa' }, 'static'],
  ['moas-kv-0.5', 'logs', { attention: 'moas-kv', kv_budget: 0.5 }, 'routed'],
  ['moas-kv-0.33', 'logs', { attention: 'moas-kv', kv_budget: 0.33 }, 'routed'],
  ['moas-kv-0.25', 'logs', { attention: 'moas-kv', kv_budget: 0.25 }, 'routed'],
  ['moas-kv-0.2', 'logs', { attention: 'moas-kv', kv_budget: 0.2 }, 'routed'],
  ['control-random', 'logs', { attention: 'moas-kv', kv_budget: 0.33, kv_route: 'random', kv_route_shares: RANDOM_SHARES }, 'control'],
  ['control-rule', 'logs', { attention: 'moas-kv', kv_budget: 0.33, kv_route: 'rule' }, 'control'],
]
// Each control against the router it controls for
const CONTROLLED = { 'control-random': 'moas-kv-0.33', 'control-rule': 'moas-kv-0.33' }

const readJsonl = (path) => readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
function runsOf(name, dir, variant) {
  // this study's logs are named by point, the paper-compare ones by variant
  const folder = join(here, dir)
  if (!existsSync(folder)) return []
  const prefix = dir === 'logs' ? name : variant
  return readdirSync(folder)
    .filter((f) => f.startsWith(`${prefix}-seed`) && f.endsWith('.summary.json'))
    .map((f) => {
      const summary = JSON.parse(readFileSync(join(folder, f), 'utf8'))
      const log = readJsonl(join(folder, f.replace('.summary.json', '.jsonl')))
      const last = log.filter((r) => typeof r.kv_fraction === 'number').at(-1)
      const minutes = log.reduce((t, r) => t + (r.ms ?? 0) + (r.eval_ms ?? 0), 0) / 60000
      return { ...summary, kv_fraction: last?.kv_fraction, minutes }
    })
    .filter((r) => r.steps === 500)
    .sort((a, b) => a.seed - b.seed)
}

const points = POINTS.map(([name, dir, over, kind]) => {
  const isStatic = kind === 'static'
  const cfg = paper(over)
  const runs = runsOf(name, dir, cfg.attention)
  const x = isStatic ? kvCacheBytesPerToken(cfg) / MHA_BYTES : runs.length ? mean(runs.map((r) => r.kv_fraction)) : NaN
  const params = paramCounts(cfg).excludingPositionEmbedding
  return { name, kind, isStatic, runs, x, params, full: runs.map((r) => r.full_val_loss), at500: runs.map((r) => r.final_val_loss) }
}).filter((p) => p.runs.length)

const fmt = (xs) => (xs.length > 1 ? `${mean(xs).toFixed(4)} ± ${sampleStd(xs).toFixed(4)}` : xs.length ? xs[0].toFixed(4) : '–')
const signed = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(4)}`
const ci = (xs) => {
  if (xs.length < 2) return undefined
  const h = studentTQuantile(0.975, xs.length - 1) * (sampleStd(xs) / Math.sqrt(xs.length))
  return [mean(xs) - h, mean(xs) + h]
}

const lines = [
  '| point | KV bytes / MHA | bytes per token | params (excl. pos. emb.) | seeds | val loss @500 (20 batches) | full val split | bpc | ms/iter |',
  '|---|---:|---:|---:|---|---:|---:|---:|---:|',
]
for (const p of points) {
  const bytes = p.isStatic ? p.x.toFixed(3) : `${p.x.toFixed(3)} measured (${p.runs.map((r) => r.kv_fraction.toFixed(3)).join(', ')})`
  const bpc = p.full.length ? (mean(p.full) / Math.LN2).toFixed(3) : '–'
  lines.push(
    `| ${p.name} | ${bytes} | ${Math.round(p.x * MHA_BYTES).toLocaleString('en-US')} | ${p.params.toLocaleString('en-US')} | ${p.runs.map((r) => r.seed).join(', ')} | ${fmt(p.at500)} | ${fmt(p.full)} | ${bpc} | ${p.runs.map((r) => Math.round(r.ms_per_iter)).join(', ')} |`,
  )
}
const hours = points.filter((p) => POINTS.find((q) => q[0] === p.name)[1] === 'logs').reduce((t, p) => t + p.runs.reduce((a, r) => a + r.minutes, 0), 0) / 60
lines.push('', `Logged wall time of the runs trained for this study: ${hours.toFixed(1)} h.`)

// Each routed point against the static points on either side of its bytes (the static line's neighbours).
lines.push('', '| comparison (full val split) | Δ mean [Welch 95 % CI] | p | Hedges\' g | verdict (α 0.05) |', '|---|---|---:|---:|---|')
const statics = points.filter((p) => p.isStatic).sort((a, b) => a.x - b.x)
const welchLine = (p, s) => {
  const w = welchTTest(p.full, s.full)
  const g = hedgesG(p.full, s.full)
  if (!w) return `| ${p.name} (${p.x.toFixed(3)}) − ${s.name} (${s.x.toFixed(3)}) | ${signed(mean(p.full) - mean(s.full))} | n/a | n/a | needs ≥ 2 seeds each |`
  const verdict = w.p < 0.05 ? `${w.diff < 0 ? 'lower' : 'higher'} beyond seed noise` : 'within seed noise'
  return `| ${p.name} (${p.x.toFixed(3)}) − ${s.name} (${s.x.toFixed(3)}) | ${signed(w.diff)} [${signed(w.ci95[0])}, ${signed(w.ci95[1])}] | ${w.p < 0.001 ? w.p.toExponential(1) : w.p.toFixed(3)} | ${g === null ? 'n/a' : g.toFixed(2)} | ${verdict} |`
}
for (const p of points.filter((q) => !q.isStatic)) {
  const below = [...statics].reverse().find((s) => s.x <= p.x + 1e-9)
  const above = statics.find((s) => s.x >= p.x - 1e-9)
  for (const s of [...new Set([below, above].filter(Boolean))]) lines.push(welchLine(p, s))
}
// The router's value: the learned levels against the same model with random or rule levels; and each
// control against MHA, the full cache
for (const c of points.filter((q) => q.kind === 'control')) {
  const r = points.find((q) => q.name === CONTROLLED[c.name])
  if (r) lines.push(welchLine(r, c))
  const mha = points.find((q) => q.name === 'mha')
  if (mha) lines.push(welchLine(c, mha))
}
writeFileSync(join(here, 'results.md'), `${lines.join('\n')}\n`)

const series = (ps, name, line) => ({ name, line, points: ps.map((p) => ({ x: p.x, seeds: p.full, mean: mean(p.full), ci95: ci(p.full) })) })
const routed = points.filter((p) => p.kind === 'routed')
const controls = points.filter((p) => p.kind === 'control')
writeFileSync(
  join(here, 'pareto.svg'),
  paretoChart(
    [
      series(statics, 'static (mha, gqa, mqa)', true),
      ...(routed.length ? [series(routed, 'moas-kv (routed)', false)] : []),
      ...controls.map((c) => series([c], c.name === 'control-rule' ? 'rule levels (control)' : 'random levels (control)', false)),
    ],
    {
    title: 'full-split val loss against KV bytes per token (paper config, 500 updates)',
    xLabel: 'KV bytes per token relative to MHA (log scale)',
      yLabel: 'val loss, full split (nats)',
    },
  ),
)
process.stdout.write(`${lines.join('\n')}\n\nwrote results.md and pareto.svg in ${here}\n`)
