/** Timing statistics. Benchmarks report the median (robust to a noisy shared machine) and the spread. */

export interface Timing {
  /** Every measured run, in milliseconds, in the order taken. */
  samples: number[]
  median: number
  min: number
  max: number
  /** Interquartile range, ms: the spread of the middle half of the runs. */
  iqr: number
}

export function summarize(samples: readonly number[]): Timing {
  if (samples.length === 0) throw new Error('summarize: no samples')
  const s = [...samples].sort((a, b) => a - b)
  return { samples: [...samples], median: quantile(s, 0.5), min: s[0], max: s[s.length - 1], iqr: quantile(s, 0.75) - quantile(s, 0.25) }
}

/** Linear-interpolated quantile of a sorted array. */
function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo)
}

export const nowMs = () => performance.now()

/** `123.4 ms (min 120.1, max 130.2, IQR 2.1, n=7)` */
export function formatTiming(t: Timing): string {
  return `${t.median.toFixed(1)} ms (min ${t.min.toFixed(1)}, max ${t.max.toFixed(1)}, IQR ${t.iqr.toFixed(1)}, n=${t.samples.length})`
}

/** Relative spread (max − min) / median, as a percentage. */
export const spreadPct = (t: Timing) => (100 * (t.max - t.min)) / t.median
