/**
 * The routing report of `moas analyze`: one self-contained HTML file (inline CSS and SVG, no script, no
 * external resource) with, per layer, the share of characters per scheme or expert, the gate entropy and
 * balance, routing by character class and by position in the line, and the text coloured by the choice.
 * Hand-written SVG for the same reason as the trainer's loss chart: no dependency, deterministic bytes.
 */
import { type GptConfig, variantSpec } from '@moas/gpt'
import type { RoutingChoice, RoutingStats } from './routing'

const COLORS = ['#e8776b', '#5b9bd5', '#70b35a', '#e3b94f', '#a783d1', '#4fb9a5', '#d873b4', '#9a9a9a']
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
const pct = (x: number) => `${(100 * x).toFixed(1)}%`

/** A horizontal stacked bar per row: the share of each choice. */
function stackedBars(rows: { label: string; share: number[]; note?: string }[], labels: string[]): string {
  const W = 560
  const left = 130
  const h = 22
  const bars = rows.map((r, i) => {
    let x = left
    const y = 8 + i * (h + 6)
    const parts = r.share.map((s, k) => {
      const w = s * (W - left - 50) // the last 50 px hold the count
      const rect = `<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${h}" fill="${COLORS[k % COLORS.length]}"><title>${esc(labels[k] ?? String(k))}: ${pct(s)}</title></rect>`
      const text = w > 34 ? `<text x="${(x + w / 2).toFixed(1)}" y="${y + 15}" text-anchor="middle" font-size="11" fill="#fff">${pct(s)}</text>` : ''
      x += w
      return rect + text
    })
    return `<text x="${left - 8}" y="${y + 15}" text-anchor="end" font-size="12">${esc(r.label)}</text>${parts.join('')}${r.note ? `<text x="${W - 4}" y="${y + 15}" text-anchor="end" font-size="10" fill="#666">${esc(r.note)}</text>` : ''}`
  })
  return `<svg viewBox="0 0 ${W} ${16 + rows.length * (h + 6)}" width="${W}" role="img">${bars.join('')}</svg>`
}

export interface RoutingReportInput {
  config: GptConfig
  stats: RoutingStats
  text: string
  choices: RoutingChoice[][]
  /** Where the model and the text come from (shown in the header). */
  model: string
  source: string
  /**
   * Characters of `text` the model does not know and the analysis skipped (--skip-unknown): the coloured
   * text still shows them, marked, so it reads as the input did; `choices` then cover the other characters.
   */
  unknown?: ReadonlySet<string>
  /** Characters of coloured text shown per layer (default 3000). */
  shownChars?: number
  /** The run's eval records with routing statistics (log.jsonl): how routing changed during training. */
  history?: { step: number; share: number[][]; entropy: number[] }[]
}

/** Share of each choice over training steps, one line per choice (layer `layer`). */
function historyChart(history: NonNullable<RoutingReportInput['history']>, layer: number, labels: string[]): string {
  const W = 560
  const H = 180
  const x0 = 40
  const steps = history.map((h) => h.step)
  const [first, last] = [Math.min(...steps), Math.max(...steps)]
  const x = (s: number) => x0 + ((s - first) / Math.max(1, last - first)) * (W - x0 - 10)
  const y = (v: number) => 10 + (1 - v) * (H - 30)
  const lines = labels.map((l, k) => {
    const pts = history.map((h) => `${x(h.step).toFixed(1)},${y(h.share[layer]?.[k] ?? 0).toFixed(1)}`).join(' ')
    return `<polyline fill="none" stroke="${COLORS[k % COLORS.length]}" stroke-width="2" points="${pts}"><title>${esc(l)}</title></polyline>`
  })
  const axes =
    `<line x1="${x0}" y1="${y(0)}" x2="${W - 10}" y2="${y(0)}" stroke="#999"/><text x="4" y="${y(1) + 4}" font-size="10">100%</text><text x="4" y="${y(0) + 4}" font-size="10">0%</text>` +
    `<text x="${x0}" y="${H - 4}" font-size="10">step ${first}</text><text x="${W - 10}" y="${H - 4}" font-size="10" text-anchor="end">step ${last}</text>`
  return `<svg viewBox="0 0 ${W} ${H}" width="${W}" role="img">${axes}${lines.join('')}</svg>`
}

export function routingReport(r: RoutingReportInput): string {
  const { config: cfg, stats } = r
  const labels = stats.labels
  const legend = labels.map((l, i) => `<span class="chip" style="background:${COLORS[i % COLORS.length]}">${esc(l)}</span>`).join(' ')
  const unknown = r.unknown ?? new Set<string>()
  // the shown characters, each with the index of its routing choice (null: skipped as unknown)
  const shown: { ch: string; at: number | null }[] = []
  let routed = 0
  for (const ch of r.text) {
    if (shown.length >= (r.shownChars ?? 3000)) break
    if (unknown.has(ch)) shown.push({ ch, at: null })
    else if (routed < r.choices.length) shown.push({ ch, at: routed++ })
    else break
  }
  const skipped = shown.filter((x) => x.at === null).length
  const layers = stats.layers.map((L, layer) => {
    const coloured = shown
      .map(({ ch, at }) => {
        if (at === null) return `<span class="unknown" title="not in the model's vocabulary: skipped (--skip-unknown)">${esc(ch)}</span>`
        const c = r.choices[at][layer]
        const title = `${labels[c.choice] ?? c.choice}; gates ${c.gates.map((g) => g.toFixed(2)).join(' ')}${c.perGroup ? `; experts per group ${c.perGroup.join(' ')}` : ''}`
        return `<span style="background:${COLORS[c.choice % COLORS.length]}55" title="${esc(title)}">${ch === '\n' ? '↵\n' : esc(ch)}</span>`
      })
      .join('')
    return `
<section>
<h2>Layer ${layer}</h2>
<p>Gate entropy ${L.entropy.toFixed(3)} nats (uniform over ${labels.length}: ${Math.log(labels.length).toFixed(3)}); mean gates ${L.meanGates.map((g, i) => `${esc(labels[i])} ${g.toFixed(3)}`).join(', ')}; balance (MoAS's MSE form) ${L.balance.toExponential(2)}.</p>
<h3>Share of characters per choice</h3>
${stackedBars([{ label: 'all characters', share: L.share, note: `${stats.positions}` }, ...(L.groups ?? []).map((g) => ({ label: `group ${g.group}`, share: g.share }))], labels)}
<h3>By character class</h3>
${stackedBars(
  L.byClass.map((c) => ({ label: c.cls, share: c.share, note: String(c.count) })),
  labels,
)}
<h3>By position in the line</h3>
${stackedBars(
  L.byLinePosition.map((b) => ({ label: `column ${b.bin}`, share: b.share, note: String(b.count) })),
  labels,
)}
${r.history?.length ? `<h3>During training (eval positions whose highest gate is each choice, from log.jsonl)</h3>\n${historyChart(r.history, layer, labels)}` : ''}
<h3>The text, coloured by the choice (first ${shown.length} characters${skipped ? `; ${skipped} not in the vocabulary, struck through: skipped` : ''}; hover for the gates)</h3>
<pre class="text">${coloured}</pre>
</section>`
  })
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="generator" content="moas analyze"><title>moas routing report: ${esc(cfg.attention)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 960px; margin: 24px auto; color: #1d2430; padding: 0 16px; }
h1 { font-size: 22px; } h2 { margin-top: 32px; border-bottom: 1px solid #dde1e6; } h3 { font-size: 15px; margin: 18px 0 6px; }
.chip { display: inline-block; padding: 2px 8px; border-radius: 3px; color: #fff; font-size: 13px; }
.text { white-space: pre-wrap; font: 14px/1.7 ui-monospace, monospace; border: 1px solid #dde1e6; padding: 10px; }
.unknown { text-decoration: line-through; color: #888; outline: 1px dashed #aaa; }
.muted { color: #5a6472; font-size: 13px; }
</style></head><body>
<h1>Where the routers send characters: ${esc(cfg.attention)}</h1>
<p class="muted">Model ${esc(r.model)} (${cfg.n_layer} layers, ${cfg.n_head} heads, n_embd ${cfg.n_embd}); text ${esc(r.source)}, ${stats.positions.toLocaleString('en-US')} characters analysed in windows of ${cfg.block_size}. Choice: ${variantSpec(cfg.attention).routing?.choice ?? 'none (no router)'}.</p>
<p>${legend}</p>
<p class="muted">${r.history?.length ? `How routing changed during training: ${r.history.length} evals of the run's log (per layer below).` : 'How routing changed during training: not available (no log.jsonl with routing statistics beside the model).'}</p>
${layers.join('\n')}
</body></html>
`
}
