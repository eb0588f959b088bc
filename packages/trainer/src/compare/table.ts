/** The table of a comparison: per variant mean ± std over seeds, and Welch's test against the baseline. */

import { cpus } from 'node:os'
import { kvCacheBytesPerToken, paramCounts, queryHeadsPerToken } from '@moas/gpt'
import type { CompareOptions } from '../compare'
import { SYNTHETIC_TASKS, type SyntheticTask } from '../data/synthetic'
import type { modelConfig, TrainPresetName, TrainProtocol } from '../presets'
import { hedgesG, mean, sampleStd, type WelchResult, welchTTest } from '../stats'
import type { RunSummary } from './summary'
export const ALPHA = 0.05

export interface Stat {
  mean: number
  /** Sample standard deviation (null with one seed). */
  std: number | null
  values: number[]
}

export interface Verdict {
  /** Welch test on the full-split loss, and on the paper's final val loss. */
  full: WelchResult | null
  val: WelchResult | null
  /** Hedges' g of the full-split loss against the baseline (null with fewer than two seeds). */
  hedges_g: number | null
  text: string
}

export interface VariantResult {
  variant: string
  params: { total: number; excluding_position_embedding: number }
  kv_cache_bytes_per_token: number
  /** Measured by decoding the final models (when probed): KV bytes the cache held per token, and tokens/s. */
  kv_bytes_held_per_token?: Stat | null
  decode_tokens_per_s?: Stat | null
  /** Query heads that attend per token and layer (@moas/gpt's queryHeadsPerToken). */
  query_heads_per_token: number
  seeds: number[]
  final_val_loss: Stat | null
  full_val_loss: Stat | null
  ms_per_iter: Stat | null
  /** Synthetic data only: per task, the accuracy on its determined characters over seeds. */
  task_accuracy?: Record<SyntheticTask, Stat | null>
  curve: { step: number; mean: number; min: number; max: number }[]
  /** Each seed's own val curve (the chart draws them under the mean). */
  seed_curves: { seed: number; curve: { step: number; val_loss: number }[] }[]
  /** Against the baseline (null for the baseline itself). */
  vs_baseline: Verdict | null
}

export interface CompareResult {
  complete: boolean
  /** Runs not finished yet, as variant/seed-N. */
  missing: string[]
  /** 'custom' when collected runs match no preset's model widths. */
  preset: TrainPresetName | 'custom'
  data: { name: string; source: string; train_tokens: number; val_tokens: number }
  protocol: TrainProtocol
  seeds: number[]
  test: string
  machine: { cpu: string; cores: number; node: string; device: string }
  variants: VariantResult[]
}

function stat(values: number[]): Stat | null {
  if (!values.length) return null
  const std = sampleStd(values)
  return { mean: mean(values), std: Number.isNaN(std) ? null : std, values }
}

/** What a table needs besides the runs: the runs' protocol, data and order. */
export type TableSpec = Pick<CompareOptions, 'variants' | 'seeds' | 'protocol' | 'data' | 'provider'> & { preset: TrainPresetName | 'custom' }

export function tabulate(opts: TableSpec, summaries: Map<string, RunSummary>, configs: Map<string, ReturnType<typeof modelConfig>>): CompareResult {
  const missing: string[] = []
  const variants: VariantResult[] = opts.variants.map((variant) => {
    const runs = opts.seeds.flatMap((seed) => {
      const s = summaries.get(`${variant}/${seed}`)
      if (!s) missing.push(`${variant}/seed-${seed}`)
      return s ? [s] : []
    })
    const cfg = configs.get(variant)!
    const counts = paramCounts(cfg)
    const steps = [...new Set(runs.flatMap((r) => r.curve.map((c) => c.step)))].sort((a, b) => a - b)
    const curve = steps.flatMap((step) => {
      const vals = runs.flatMap((r) => r.curve.filter((c) => c.step === step).map((c) => c.val_loss))
      return vals.length ? [{ step, mean: mean(vals), min: Math.min(...vals), max: Math.max(...vals) }] : []
    })
    return {
      variant,
      params: { total: counts.total, excluding_position_embedding: counts.excludingPositionEmbedding },
      kv_cache_bytes_per_token: kvCacheBytesPerToken(cfg),
      ...(runs.some((r) => r.decode)
        ? {
            kv_bytes_held_per_token: stat(runs.flatMap((r) => (r.decode ? [r.decode.kv_bytes_per_token] : []))),
            decode_tokens_per_s: stat(runs.flatMap((r) => (r.decode ? [r.decode.tokens_per_s] : []))),
          }
        : {}),
      query_heads_per_token: queryHeadsPerToken(cfg),
      seeds: runs.map((r) => r.seed),
      final_val_loss: stat(runs.flatMap((r) => (r.final_val_loss === null ? [] : [r.final_val_loss]))),
      full_val_loss: stat(runs.map((r) => r.full_val_loss)),
      ...(runs.some((r) => r.task_accuracy)
        ? {
            task_accuracy: Object.fromEntries(
              SYNTHETIC_TASKS.map((t) => [t, stat(runs.flatMap((r) => (r.task_accuracy?.[t] == null ? [] : [r.task_accuracy[t]!])))]),
            ) as Record<SyntheticTask, Stat | null>,
          }
        : {}),
      ms_per_iter: stat(runs.flatMap((r) => (r.ms_per_iter === null ? [] : [r.ms_per_iter]))),
      curve,
      seed_curves: runs.map((r) => ({ seed: r.seed, curve: r.curve })),
      vs_baseline: null,
    }
  })
  const base = variants[0]
  for (const v of variants.slice(1)) v.vs_baseline = verdict(v, base)
  return {
    complete: missing.length === 0,
    missing,
    preset: opts.preset,
    data: { name: opts.data.name, source: opts.data.source, train_tokens: opts.data.train.length, val_tokens: opts.data.val.length },
    protocol: opts.protocol,
    seeds: [...opts.seeds],
    test: `Welch's two-sided t-test (unequal variances), alpha ${ALPHA}, each variant vs ${base.variant}, over seeds; verdict on the full-split loss`,
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, device: opts.provider ?? 'cpu' },
    variants,
  }
}

/** A p-value for the tables: three decimals, or scientific below 0.001. */
export const fmtP = (p: number) => (p < 0.001 ? p.toExponential(1) : p.toFixed(3))

function verdict(v: VariantResult, base: VariantResult): Verdict {
  const test = (a: Stat | null, b: Stat | null) => (a && b ? welchTTest(a.values, b.values) : null)
  const full = test(v.full_val_loss, base.full_val_loss)
  const val = test(v.final_val_loss, base.final_val_loss)
  let text: string
  if (!full) text = 'n/a: needs ≥2 seeds'
  else if (full.p < ALPHA) text = `${full.diff < 0 ? 'better' : 'worse'} than ${base.variant} beyond seed noise (p = ${fmtP(full.p)})`
  else text = `within seed noise of ${base.variant} (p = ${fmtP(full.p)})`
  const g = v.full_val_loss && base.full_val_loss ? hedgesG(v.full_val_loss.values, base.full_val_loss.values) : null
  return { full, val, hedges_g: g, text }
}
