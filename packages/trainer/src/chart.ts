/**
 * The val-loss chart of `compare`, as hand-written SVG: no plotting dependency, a few dozen lines, and
 * byte-for-byte deterministic output (numbers are printed with fixed precision), so results committed to
 * the repository diff cleanly.
 */

export interface CurvePoint {
  step: number
  mean: number
  min: number
  max: number
}

export interface CurveSeries {
  name: string
  points: readonly CurvePoint[]
  /** Each seed's own curve, drawn as a thin line in the series' colour under its mean. */
  seeds?: readonly { seed: number; points: readonly { step: number; value: number }[] }[]
}

export interface ChartOptions {
  title?: string
  xLabel?: string
  yLabel?: string
  width?: number
  height?: number
  /** The legend's notes on what lines and bands mean over seeds (default true; off for a single run). */
  seedNotes?: boolean
}

/** Colour-blind-safe palette (Okabe–Ito). */
const COLORS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000']

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
const f = (v: number) => (Math.round(v * 100) / 100).toFixed(2)

/** "Nice" tick values covering [lo, hi]: steps of 1, 2 or 5 × 10^k, about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo]
  const raw = (hi - lo) / count
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!
  const ticks: number[] = []
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)))
  return ticks
}

type Margins = { left: number; right: number; top: number; bottom: number }

/** The frame both charts share: the SVG element and background, title, y grid with its labels. */
function openChart(W: number, H: number, m: Margins, title: string | undefined, yTicks: number[], Y: (v: number) => number): string[] {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
  ]
  if (title) out.push(`<text x="${f(W / 2)}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>`)
  for (const t of yTicks) {
    out.push(`<line x1="${f(m.left)}" y1="${f(Y(t))}" x2="${f(W - m.right)}" y2="${f(Y(t))}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${f(m.left - 6)}" y="${f(Y(t) + 4)}" text-anchor="end">${esc(String(t))}</text>`)
  }
  return out
}

/** The plot box and both axis labels. */
function axes(W: number, H: number, m: Margins, xLabel: string, yLabel: string): string[] {
  return [
    `<rect x="${f(m.left)}" y="${f(m.top)}" width="${f(W - m.left - m.right)}" height="${f(H - m.top - m.bottom)}" fill="none" stroke="#333333"/>`,
    `<text x="${f((m.left + W - m.right) / 2)}" y="${f(H - 14)}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(18 ${f((m.top + H - m.bottom) / 2)}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`,
  ]
}

/** Line chart of each series' mean with a shaded min–max band (the spread over seeds). */
export function valLossChart(series: readonly CurveSeries[], opts: ChartOptions = {}): string {
  const W = opts.width ?? 720
  const H = opts.height ?? 440
  const m = { left: 70, right: 170, top: 40, bottom: 55 }
  const pts = series.flatMap((s) => s.points).filter((p) => [p.step, p.mean, p.min, p.max].every(Number.isFinite))
  const x0 = Math.min(0, ...pts.map((p) => p.step))
  const x1 = Math.max(x0 + 1, ...pts.map((p) => p.step))
  let y0 = Math.min(...pts.map((p) => p.min))
  let y1 = Math.max(...pts.map((p) => p.max))
  if (!pts.length) [y0, y1] = [0, 1]
  if (y1 - y0 < 1e-6) [y0, y1] = [y0 - 0.5, y1 + 0.5]
  const pad = (y1 - y0) * 0.05
  ;[y0, y1] = [y0 - pad, y1 + pad]
  const X = (v: number) => m.left + ((v - x0) / (x1 - x0)) * (W - m.left - m.right)
  const Y = (v: number) => H - m.bottom - ((v - y0) / (y1 - y0)) * (H - m.top - m.bottom)

  const out = openChart(W, H, m, opts.title, niceTicks(y0, y1, 6), Y)
  for (const t of niceTicks(x0, x1, 8)) {
    out.push(`<line x1="${f(X(t))}" y1="${f(H - m.bottom)}" x2="${f(X(t))}" y2="${f(H - m.bottom + 5)}" stroke="#333333"/>`)
    out.push(`<text x="${f(X(t))}" y="${f(H - m.bottom + 18)}" text-anchor="middle">${esc(String(t))}</text>`)
  }
  out.push(...axes(W, H, m, opts.xLabel ?? 'step', opts.yLabel ?? 'val loss (nats)'))
  // Bands first, then lines on top; a legend entry per series.
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]
    const p = s.points.filter((q) => [q.step, q.mean, q.min, q.max].every(Number.isFinite))
    if (p.some((q) => q.max > q.min)) {
      const band = [...p.map((q) => `${f(X(q.step))},${f(Y(q.max))}`), ...[...p].reverse().map((q) => `${f(X(q.step))},${f(Y(q.min))}`)]
      out.push(`<polygon points="${band.join(' ')}" fill="${color}" fill-opacity="0.18" stroke="none"/>`)
    }
  })
  series.forEach((s, i) => {
    for (const run of s.seeds ?? []) {
      const p = run.points.filter((q) => Number.isFinite(q.step) && Number.isFinite(q.value))
      if (p.length > 1)
        out.push(
          `<polyline points="${p.map((q) => `${f(X(q.step))},${f(Y(q.value))}`).join(' ')}" fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1" stroke-opacity="0.5"><title>${esc(`${s.name}, seed ${run.seed}`)}</title></polyline>`,
        )
    }
  })
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]
    const p = s.points.filter((q) => [q.step, q.mean, q.min, q.max].every(Number.isFinite))
    if (p.length) out.push(`<polyline points="${p.map((q) => `${f(X(q.step))},${f(Y(q.mean))}`).join(' ')}" fill="none" stroke="${color}" stroke-width="2"/>`)
    for (const q of p) out.push(`<circle cx="${f(X(q.step))}" cy="${f(Y(q.mean))}" r="2.5" fill="${color}"/>`)
    const ly = m.top + 10 + i * 20
    out.push(`<line x1="${f(W - m.right + 15)}" y1="${f(ly)}" x2="${f(W - m.right + 40)}" y2="${f(ly)}" stroke="${color}" stroke-width="2"/>`)
    out.push(`<text x="${f(W - m.right + 46)}" y="${f(ly + 4)}">${esc(s.name)}</text>`)
  })
  if (opts.seedNotes ?? true) {
    out.push(`<text x="${f(W - m.right + 15)}" y="${f(m.top + 10 + series.length * 20 + 8)}" fill="#666666" font-size="10">line: mean over seeds</text>`)
    out.push(`<text x="${f(W - m.right + 15)}" y="${f(m.top + 10 + series.length * 20 + 22)}" fill="#666666" font-size="10">band: min-max over seeds</text>`)
  }
  if (series.some((s) => s.seeds?.length))
    out.push(`<text x="${f(W - m.right + 15)}" y="${f(m.top + 10 + series.length * 20 + 36)}" fill="#666666" font-size="10">thin lines: one per seed</text>`)
  out.push('</svg>')
  return `${out.join('\n')}\n`
}

/** One point set of a Pareto chart: each seed's (x, y) and the mean with its 95 % interval on y. */
export interface ParetoSeries {
  name: string
  points: readonly { x: number; seeds: readonly number[]; mean: number; ci95?: readonly [number, number] }[]
  /** Join the series' means with a line (the static variants' frontier). */
  line?: boolean
}

/**
 * Quality against cost: x on a log₂ axis (e.g. KV bytes per token relative to MHA), y the loss. Each seed
 * is a small dot, each mean a larger one with its 95 % interval as a vertical bar.
 */
export function paretoChart(series: readonly ParetoSeries[], opts: ChartOptions = {}): string {
  const W = opts.width ?? 720
  const H = opts.height ?? 460
  const m = { left: 70, right: 200, top: 40, bottom: 55 }
  const all = series.flatMap((s) => s.points)
  const xs = all.map((p) => Math.log2(p.x))
  const ys = all.flatMap((p) => [...p.seeds, p.mean, ...(p.ci95 ?? [])]).filter(Number.isFinite)
  let [x0, x1] = xs.length ? [Math.min(...xs), Math.max(...xs)] : [-1, 0]
  if (x1 - x0 < 1e-9) [x0, x1] = [x0 - 0.5, x1 + 0.5]
  const xPad = (x1 - x0) * 0.06
  ;[x0, x1] = [x0 - xPad, x1 + xPad]
  let [y0, y1] = ys.length ? [Math.min(...ys), Math.max(...ys)] : [0, 1]
  if (y1 - y0 < 1e-6) [y0, y1] = [y0 - 0.5, y1 + 0.5]
  const pad = (y1 - y0) * 0.08
  ;[y0, y1] = [y0 - pad, y1 + pad]
  const X = (v: number) => m.left + ((Math.log2(v) - x0) / (x1 - x0)) * (W - m.left - m.right)
  const Y = (v: number) => H - m.bottom - ((v - y0) / (y1 - y0)) * (H - m.top - m.bottom)
  const out = openChart(W, H, m, opts.title, niceTicks(y0, y1, 6), Y)
  // x ticks at powers of two, labelled as fractions
  for (let k = Math.ceil(x0); k <= Math.floor(x1); k++) {
    const v = 2 ** k
    out.push(`<line x1="${f(X(v))}" y1="${f(m.top)}" x2="${f(X(v))}" y2="${f(H - m.bottom)}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${f(X(v))}" y="${f(H - m.bottom + 18)}" text-anchor="middle">${esc(k >= 0 ? String(v) : `1/${2 ** -k}`)}</text>`)
  }
  out.push(...axes(W, H, m, opts.xLabel ?? 'cost (log scale)', opts.yLabel ?? 'loss (nats)'))
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length]
    const pts = [...s.points].sort((a, b) => a.x - b.x)
    if (s.line && pts.length > 1)
      out.push(`<polyline points="${pts.map((p) => `${f(X(p.x))},${f(Y(p.mean))}`).join(' ')}" fill="none" stroke="${color}" stroke-width="1.5"/>`)
    for (const p of pts) {
      if (p.ci95) out.push(`<line x1="${f(X(p.x))}" y1="${f(Y(p.ci95[0]))}" x2="${f(X(p.x))}" y2="${f(Y(p.ci95[1]))}" stroke="${color}" stroke-width="1.5"/>`)
      for (const y of p.seeds) out.push(`<circle cx="${f(X(p.x))}" cy="${f(Y(y))}" r="2" fill="${color}" fill-opacity="0.55"/>`)
      out.push(
        `<circle cx="${f(X(p.x))}" cy="${f(Y(p.mean))}" r="4.5" fill="${color}"><title>${esc(`${s.name} at ${p.x.toFixed(3)}: ${p.mean.toFixed(4)}`)}</title></circle>`,
      )
    }
    const ly = m.top + 10 + i * 20
    out.push(`<circle cx="${f(W - m.right + 24)}" cy="${f(ly)}" r="4.5" fill="${color}"/>`)
    out.push(`<text x="${f(W - m.right + 36)}" y="${f(ly + 4)}">${esc(s.name)}</text>`)
  })
  const note = m.top + 10 + series.length * 20 + 8
  out.push(`<text x="${f(W - m.right + 15)}" y="${f(note)}" fill="#666666" font-size="10">large dot: mean over seeds</text>`)
  out.push(`<text x="${f(W - m.right + 15)}" y="${f(note + 14)}" fill="#666666" font-size="10">small dots: one per seed</text>`)
  out.push(`<text x="${f(W - m.right + 15)}" y="${f(note + 28)}" fill="#666666" font-size="10">bar: 95 % interval of the mean</text>`)
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
