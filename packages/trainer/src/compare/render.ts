import { join } from 'node:path'
import { writeFileAtomic } from '@moas/gpt/node'
import { type CurveSeries, valLossChart } from '../chart'
import { SYNTHETIC_TASKS } from '../data/synthetic'
import type { WelchResult } from '../stats'
import { COMPARE_FILES } from './folder'
import { type CompareResult, fmtP, type Stat } from './table'

const fmt = (s: Stat | null, digits = 4) => (s ? (s.std === null ? s.mean.toFixed(digits) : `${s.mean.toFixed(digits)} ± ${s.std.toFixed(digits)}`) : '–')
const fmtTest = (w: WelchResult | null) => (w ? `t = ${w.t.toFixed(2)}, df = ${Number.isNaN(w.df) ? 'n/a' : w.df.toFixed(1)}, p = ${fmtP(w.p)}` : 'n/a')
const int = (n: number) => n.toLocaleString('en-US')
const signed = (x: number, digits = 4) => `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`
/** Δ of the means, with the Welch 95 % confidence interval when there are seeds enough. */
const delta = (a: Stat | null, b: Stat | null, w: WelchResult | null) =>
  a && b ? `${signed(a.mean - b.mean)}${w ? ` [${signed(w.ci95[0])}, ${signed(w.ci95[1])}]` : ''}` : '–'
const bpc = (s: Stat | null) => (s ? `${(s.mean / Math.LN2).toFixed(3)}` : '–')

export function renderMarkdown(r: CompareResult): string {
  const base = r.variants[0]?.variant
  const lines = [
    `# moas compare: ${r.preset} preset on ${r.data.name}`,
    '',
    `${r.protocol.steps} updates, batch ${r.protocol.batch_size}${r.protocol.accum > 1 ? ` × ${r.protocol.accum}` : ''}, lr ${r.protocol.lr} ${r.protocol.schedule}, seeds ${r.seeds.join(', ')}. ` +
      `Val loss: mean over ${r.protocol.eval_iters} random val batches at the last update (the paper's metric); full split: the deterministic evaluation of all ${int(r.data.val_tokens)} val characters. Mean ± sample std over seeds. Loss in nats; bpc = full-split loss / ln 2. ` +
      `q heads: query heads attending per token and layer. KV bytes/token held and decode tok/s: the final model decoding val text greedily with its KV cache (prompt then 32 steps, batch 1, in this run; the bytes are what the cache's tensors held over the positions cached). Δ full: difference of the means with its Welch 95 % confidence interval; g: Hedges' g (standardized difference, small-sample corrected).`,
    '',
    `| variant | params (excl. pos. emb.) | q heads | KV bytes/token held | decode tok/s | val loss @${r.protocol.steps} | full-split val loss | bpc | ms/iter | Δ full vs ${base} [95 % CI] | g | Welch (full split) | Welch (val loss) | verdict |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|',
  ]
  const tasks = r.variants.some((v) => v.task_accuracy)
  for (const v of r.variants) {
    const d = v.vs_baseline
    lines.push(
      `| ${v.variant} | ${int(v.params.total)} (${int(v.params.excluding_position_embedding)}) | ${v.query_heads_per_token} | ${v.kv_bytes_held_per_token ? int(Math.round(v.kv_bytes_held_per_token.mean)) : '–'} | ${v.decode_tokens_per_s ? int(Math.round(v.decode_tokens_per_s.mean)) : '–'} | ${fmt(v.final_val_loss)} | ${fmt(v.full_val_loss)} | ${bpc(v.full_val_loss)} | ${v.ms_per_iter ? v.ms_per_iter.mean.toFixed(0) : '–'} | ` +
        `${d ? delta(v.full_val_loss, r.variants[0].full_val_loss, d.full) : 'baseline'} | ${d && d.hedges_g !== null ? d.hedges_g.toFixed(2) : '–'} | ` +
        `${d ? fmtTest(d.full) : '–'} | ${d ? fmtTest(d.val) : '–'} | ${d ? d.text : 'baseline'} |`,
    )
  }
  if (tasks) {
    const pctStat = (s: Stat | null | undefined) => (s ? `${(100 * s.mean).toFixed(1)}%${s.std === null ? '' : ` ± ${(100 * s.std).toFixed(1)}`}` : '–')
    lines.push(
      '',
      'Accuracy on the characters each synthetic task determines (val split; most likely character, for brackets the most likely closer; mean ± std over seeds):',
      '',
    )
    lines.push(`| variant | ${SYNTHETIC_TASKS.map((t) => `${t}`).join(' | ')} |`, `|---|${SYNTHETIC_TASKS.map(() => '---:').join('|')}|`)
    for (const v of r.variants) lines.push(`| ${v.variant} | ${SYNTHETIC_TASKS.map((t) => pctStat(v.task_accuracy?.[t])).join(' | ')} |`)
  }
  lines.push('', `Test: ${r.test}. With one seed there is no estimate of seed-to-seed noise, so no verdict.`)
  lines.push(`Machine: ${r.machine.cpu}, ${r.machine.cores} cores, Node ${r.machine.node}, device ${r.machine.device ?? 'cpu'}.`)
  if (!r.complete) lines.push('', `**Incomplete**: ${r.missing.length} run(s) not finished (${r.missing.join(', ')}); rerun the same command to continue.`)
  return `${lines.join('\n')}\n`
}

export function renderChart(r: CompareResult): string {
  const series: CurveSeries[] = r.variants.map((v) => ({
    name: v.variant,
    points: v.curve,
    seeds: v.seed_curves.map((c) => ({ seed: c.seed, points: c.curve.map((p) => ({ step: p.step, value: p.val_loss })) })),
  }))
  const n = r.seeds.length
  return valLossChart(series, {
    title: `val loss, ${r.preset} preset on ${r.data.name} (${n} seed${n > 1 ? 's' : ''})`,
    xLabel: 'update',
    yLabel: 'val loss (nats)',
  })
}

/** The three result files of a comparison folder, each written atomically. */
export function writeCompareResults(out: string, result: CompareResult): void {
  writeFileAtomic(join(out, COMPARE_FILES.json), `${JSON.stringify(result, null, 2)}\n`)
  writeFileAtomic(join(out, COMPARE_FILES.markdown), renderMarkdown(result))
  writeFileAtomic(join(out, COMPARE_FILES.chart), renderChart(result))
}
