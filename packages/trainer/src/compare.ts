/**
 * `compare`: train each variant for each seed (through train()), then a table with honest statistics.
 *
 * Each (variant, seed) run lives in OUT/<variant>/seed-<seed>/, a normal run directory, plus summary.json
 * once it is finished and evaluated. Rerunning the same command skips finished runs and resumes
 * unfinished ones exactly, so a long comparison can be stopped (Ctrl-C) and continued at any time.
 *
 * Statistics: per variant the mean and sample standard deviation over seeds of the final val loss (the
 * paper's metric: eval_iters random val batches) and of the full-split loss (the deterministic evaluation of
 * the whole val split, which removes eval-batch sampling noise). Each variant is compared with the first
 * (the baseline) by Welch's two-sided t-test (unequal variances) at α = 0.05 on the full-split loss;
 * the test on the paper's metric is reported beside it.
 */

import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'
import type { CharTokenizer, LoadedModel } from '@moas/gpt'
import { type GptConfigInput, kvCacheBytesPerToken, paramCounts, queryHeadsPerToken, VARIANTS } from '@moas/gpt'
import { loadModel, writeFileAtomic } from '@moas/gpt/node'
import type { Provider } from '@moas/tensor-core'
import { type CurveSeries, valLossChart } from './chart'
import { SYNTHETIC_TASKS, type SyntheticTask } from './data/synthetic'
import { TrainError } from './errors'
import { evaluateTokens, syntheticTaskAccuracy } from './evaluate'
import {
  type Dataset,
  diffRunConfigs,
  makeRunConfig,
  modelConfig,
  PRESET_NAMES,
  protocolOfRun,
  type RunConfig,
  type TrainPresetName,
  type TrainProtocol,
} from './presets'
import { RunLock, realRunDir } from './run-lock'
import { hedgesG, mean, sampleStd, type WelchResult, welchTTest } from './stats'
import { type LogRecord, medianMs, readLog, readRun, type TrainResult, train } from './train'

export const ALPHA = 0.05
export const COMPARE_FILES = { markdown: 'results.md', json: 'results.json', chart: 'val_loss.svg', summary: 'summary.json', marker: 'compare.json' } as const

export interface CompareOptions {
  out: string
  variants: readonly string[]
  seeds: readonly number[]
  preset: TrainPresetName
  protocol: TrainProtocol
  /** Model config keys on top of the preset (`--set`); `attention` is set per variant. */
  model?: GptConfigInput
  data: Dataset
  signal?: AbortSignal
  threads?: number
  /** Execution provider of every run (default cpu); recorded in results.json. */
  provider?: Provider
  /** Before each run: 'new', 'resume' (unfinished run found) or 'done' (finished, skipped). */
  onRun?: (info: {
    variant: string
    seed: number
    index: number
    total: number
    status: 'new' | 'resume' | 'done'
    dir: string
    steps: number
    step: number
  }) => void
  onRecord?: (variant: string, seed: number, record: LogRecord) => void
  /** Things found and repaired on the way (a stale lock, a torn log line). */
  onNote?: (message: string) => void
  /** Measure each finished run's decoding (KV bytes held per token, tokens/s) for the table. */
  probeDecode?: DecodeProber
}

/** What one finished (variant, seed) run contributes; stored as summary.json in its directory. */
export interface RunSummary {
  variant: string
  seed: number
  steps: number
  final_val_loss: number | null
  full_val_loss: number
  full_val_tokens: number
  ms_per_iter: number | null
  curve: { step: number; val_loss: number }[]
  /** Synthetic data only: accuracy on the determined characters of each task of the val split. */
  task_accuracy?: Record<SyntheticTask, number | null>
  /** The final model decoding val text with its KV cache (CompareOptions.probeDecode), when measured. */
  decode?: DecodeProbe
}

/** What a decode of the final model measured: the KV bytes its cache held per cached token, and its speed. */
export interface DecodeProbe {
  kv_bytes_per_token: number
  tokens_per_s: number
  /** Positions in the cache at the end (prompt + decoded tokens). */
  context: number
}

/** Decodes with a finished run's model (the CLI's uses @moas/inference's DecoderSession; the trainer does not depend on it). */
export type DecodeProber = (model: LoadedModel, text: Int32Array) => Promise<DecodeProbe>

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

const runDir = (out: string, variant: string, seed: number) => join(out, variant, `seed-${seed}`)
const exists = (dir: string) => existsSync(dir) || existsSync(`${dir}.next`) || existsSync(`${dir}.prev`)

function readSummary(dir: string, steps: number, synthetic: boolean, decode = false): RunSummary | null {
  const path = join(dir, COMPARE_FILES.summary)
  if (!existsSync(path)) return null
  try {
    const s = JSON.parse(readFileSync(path, 'utf8')) as RunSummary
    return s.steps === steps && Number.isFinite(s.full_val_loss) && (!synthetic || s.task_accuracy) && (!decode || s.decode) ? s : null
  } catch {
    return null // torn or foreign: recompute it
  }
}

/** The summary of a finished run: its curve from log.jsonl, and the full-split loss of its final model. */
async function summarize(
  dir: string,
  variant: string,
  seed: number,
  steps: number,
  data: Dataset,
  threads?: number,
  provider?: Provider,
  probeDecode?: DecodeProber,
): Promise<RunSummary> {
  const records = readLog(join(dir, 'log.jsonl')).filter((r) => r.step <= steps)
  const evals = records.filter((r) => typeof r.val_loss === 'number')
  const model = await loadModel(dir)
  const full = await evaluateTokens(model, data.val, { threads, batchSize: 12, provider })
  const task = data.name === 'synthetic' ? await syntheticTaskAccuracy(model, model.tokenizer.decode(data.val), { threads, provider }) : null
  return {
    variant,
    seed,
    steps,
    final_val_loss: evals.length && evals[evals.length - 1].step === steps ? evals[evals.length - 1].val_loss! : null,
    full_val_loss: full.loss,
    full_val_tokens: full.tokens,
    ms_per_iter: medianMs(records),
    curve: evals.map((r) => ({ step: r.step, val_loss: r.val_loss! })),
    ...(task ? { task_accuracy: Object.fromEntries(SYNTHETIC_TASKS.map((t) => [t, task[t].accuracy])) as Record<SyntheticTask, number | null> } : {}),
    ...(probeDecode ? { decode: await probeDecode(model, data.val) } : {}),
  }
}

export async function compare(opts: CompareOptions): Promise<CompareResult> {
  const out = realRunDir(opts.out)
  if (!opts.variants.length) throw new TrainError('compare needs at least one variant')
  if (!opts.seeds.length) throw new TrainError('compare needs at least one seed')
  const dup = opts.variants.find((v, i) => opts.variants.indexOf(v) !== i)
  if (dup) throw new TrainError(`variant '${dup}' is listed twice`)
  // Validate every variant's config before training anything.
  const configs = new Map(opts.variants.map((v) => [v, modelConfig(opts.preset, opts.data.tokenizer.vocabSize, { ...opts.model, attention: v })]))
  checkCompareDir(out)
  const lock = RunLock.acquire(out, opts.onNote)
  try {
    return await compareLocked(opts, out, configs)
  } finally {
    lock.release()
  }
}

/** Entries compare writes in its --out: its result files and one directory per variant. */
function isCompareEntry(name: string): boolean {
  const base = name.replace(/\.tmp$/, '')
  return (Object.values(COMPARE_FILES) as string[]).includes(base) || (VARIANTS as readonly string[]).includes(name.replace(/\.(next|prev)$/, ''))
}

/**
 * compare writes only into a folder of its own: an --out holding anything else (a results.md the user
 * wrote, unrelated files) is refused rather than overwritten.
 */
function checkCompareDir(out: string): void {
  if (!existsSync(out)) return
  const entries = readdirSync(out)
  const foreign = entries.filter((e) => !isCompareEntry(e))
  const ours = existsSync(join(out, COMPARE_FILES.marker))
  const results = entries.filter((e) => [COMPARE_FILES.markdown, COMPARE_FILES.json, COMPARE_FILES.chart].includes(e as never))
  if (foreign.length || (!ours && results.length))
    throw new TrainError(
      `${out} holds files that moas compare did not write (${[...foreign, ...(ours ? [] : results)].slice(0, 4).join(', ')}); compare writes into a folder of its own: choose an empty or new --out`,
    )
}

/** compare.json of a compare folder (`collected`: the run directories a --collect table was made from), or null. */
function readMarker(out: string): { collected?: string[] } | null {
  const path = join(out, COMPARE_FILES.marker)
  if (!existsSync(path)) return null
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    return {}
  }
}

async function compareLocked(opts: CompareOptions, out: string, configs: Map<string, ReturnType<typeof modelConfig>>): Promise<CompareResult> {
  const steps = opts.protocol.steps
  if (readMarker(out)?.collected)
    throw new TrainError(
      `${out} holds a table collected from run directories elsewhere (--collect); train a comparison into a folder of its own: choose a new --out`,
    )
  mkdirSync(out, { recursive: true })
  writeFileAtomic(join(out, COMPARE_FILES.marker), `${JSON.stringify({ format: 'moas-compare', version: 1 })}\n`)
  const summaries = new Map<string, RunSummary>()
  const total = opts.variants.length * opts.seeds.length
  let index = 0
  let interrupted = false
  for (const seed of opts.seeds) {
    for (const variant of opts.variants) {
      // Seed-major order: after the first seed every variant has a result, so a stopped comparison is useful.
      if (interrupted || opts.signal?.aborted) {
        interrupted = true
        break
      }
      const dir = runDir(out, variant, seed)
      const run = makeRunConfig(opts.protocol, configs.get(variant)!, opts.data, seed)
      let summary: RunSummary | null = null
      let status: 'new' | 'resume' | 'done' = 'new'
      let step = 0
      if (exists(dir)) {
        // An existing run counts only if it was trained with this protocol: never label it with another.
        const saved = await readRun(dir)
        const diff = diffRunConfigs(saved.state.run, run)
        if (diff.length)
          throw new TrainError(
            `${dir} was trained with a different protocol than the one asked for now (${diff.join('; ')}); rerun compare with that run's settings, or use another --out for the new protocol`,
          )
        if (saved.state.step > steps)
          throw new TrainError(
            `${dir} holds a model trained ${saved.state.step} updates, more than the ${steps} asked for now; its losses would be labelled as a ${steps}-update table. Rerun compare with --steps ${saved.state.step} (or more), or use another --out`,
          )
        const device = opts.provider ?? 'cpu'
        const ranOn = [...new Set(saved.records.map((r) => r.device ?? 'cpu'))]
        if (ranOn.some((d) => d !== device))
          throw new TrainError(
            `${dir} was trained on ${ranOn.join(' and ')}, not on ${device} as asked now; rerun compare with --device ${ranOn[0]}, or use another --out for ${device}`,
          )
        step = saved.state.step
        status = saved.state.step >= steps ? 'done' : 'resume'
        summary = existsSync(dir) ? readSummary(dir, steps, opts.data.name === 'synthetic', !!opts.probeDecode) : null
      }
      if (summary) status = 'done'
      opts.onRun?.({ variant, seed, index: index++, total, status, dir, steps, step: summary ? steps : step })
      if (!summary) {
        let result: TrainResult | null = null
        if (status !== 'done') {
          result = await train({
            out: dir,
            run,
            steps,
            checkpointInterval: opts.protocol.checkpoint_interval,
            data: opts.data,
            resume: status === 'resume',
            signal: opts.signal,
            threads: opts.threads,
            provider: opts.provider,
            onRecord: (r) => opts.onRecord?.(variant, seed, r),
            onNote: opts.onNote,
          })
        }
        if (result?.status === 'interrupted') {
          interrupted = true
          break
        }
        summary = await summarize(dir, variant, seed, steps, opts.data, opts.threads, opts.provider, opts.probeDecode)
        writeFileAtomic(join(dir, COMPARE_FILES.summary), `${JSON.stringify(summary, null, 2)}\n`)
      }
      summaries.set(`${variant}/${seed}`, summary)
    }
    if (interrupted) break
  }

  const result = tabulate(opts, summaries, configs)
  writeFileAtomic(join(out, COMPARE_FILES.json), `${JSON.stringify(result, null, 2)}\n`)
  writeFileAtomic(join(out, COMPARE_FILES.markdown), renderMarkdown(result))
  writeFileAtomic(join(out, COMPARE_FILES.chart), renderChart(result))
  return result
}

function stat(values: number[]): Stat | null {
  if (!values.length) return null
  const std = sampleStd(values)
  return { mean: mean(values), std: Number.isNaN(std) ? null : std, values }
}

/** What a table needs besides the runs: the runs' protocol, data and order. */
type TableSpec = Pick<CompareOptions, 'variants' | 'seeds' | 'protocol' | 'data' | 'provider'> & { preset: TrainPresetName | 'custom' }

function tabulate(opts: TableSpec, summaries: Map<string, RunSummary>, configs: Map<string, ReturnType<typeof modelConfig>>): CompareResult {
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

const fmtP = (p: number) => (p < 0.001 ? p.toExponential(1) : p.toFixed(3))
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

/** A finished run directory handed to collectCompare, with what it was trained with. */
export interface CollectedRun {
  dir: string
  variant: string
  seed: number
  steps: number
  run: RunConfig
}

/** Model keys every run of one table shares (the rest follow from the variant). */
const SHARED_MODEL_KEYS = ['vocab_size', 'block_size', 'n_layer', 'n_head', 'n_embd', 'bias', 'dropout'] as const

/**
 * Read run directories gathered from anywhere (`moas compare --collect DIR…`) and check that they make
 * one table: every run finished, one protocol (optimizer, schedule, evaluation, data), the same model
 * widths and vocabulary, each (variant, seed) once. Returns the runs and the vocabulary they share.
 */
export async function readCollectedRuns(dirs: readonly string[]): Promise<{ runs: CollectedRun[]; protocol: TrainProtocol; tokenizer: CharTokenizer }> {
  if (!dirs.length) throw new TrainError('--collect needs at least one run directory')
  const runs: CollectedRun[] = []
  let first: { dir: string; protocol: TrainProtocol; run: RunConfig; vocab: string } | null = null
  let tokenizer: CharTokenizer | null = null
  for (const raw of dirs) {
    const dir = realRunDir(raw)
    const saved = await readRun(dir)
    const { state } = saved
    if (state.step < state.steps)
      throw new TrainError(`${dir} is not finished (step ${state.step} of ${state.steps}); finish it with: moas train --resume ${dir}`)
    // The protocol without the run length's bookkeeping: checkpoints may be taken at any interval.
    const protocol = { ...protocolOfRun(state.run, state.steps, 0) }
    const vocab = JSON.stringify(saved.tokenizer.toJSON())
    if (!first) {
      first = { dir, protocol, run: state.run, vocab }
      tokenizer = saved.tokenizer
    } else {
      const differs = (a: Record<string, unknown>, b: Record<string, unknown>, keys: readonly string[]) =>
        keys.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).map((k) => `${k}: ${JSON.stringify(b[k])} there, ${JSON.stringify(a[k])} here`)
      const diff = [
        ...differs(protocol as unknown as Record<string, unknown>, first.protocol as unknown as Record<string, unknown>, [
          ...new Set([...Object.keys(protocol), ...Object.keys(first.protocol)]),
        ]),
        ...differs(state.run.data, first.run.data, ['name', 'train_tokens', 'val_tokens']).map((d) => `data.${d}`),
        ...differs(state.run.model as unknown as Record<string, unknown>, first.run.model as unknown as Record<string, unknown>, SHARED_MODEL_KEYS).map(
          (d) => `model.${d}`,
        ),
        ...(vocab === first.vocab ? [] : ['the tokenizer vocabulary']),
      ]
      if (diff.length)
        throw new TrainError(
          `${dir} was trained with a different protocol than ${first.dir} (${diff.join('; ')}); a table compares runs of one protocol: collect those separately`,
        )
    }
    const variant = state.run.model.attention
    const twin = runs.find((r) => r.variant === variant && r.seed === state.run.seed)
    if (twin) throw new TrainError(`${twin.dir} and ${dir} are both ${variant} seed ${state.run.seed}; collect each (variant, seed) once`)
    const sibling = runs.find((r) => r.variant === variant)
    if (sibling && diffRunConfigs(sibling.run.model, state.run.model).length)
      throw new TrainError(
        `${dir} and ${sibling.dir} are both ${variant} but with different model configs (${diffRunConfigs(sibling.run.model, state.run.model).join('; ')}); collect runs of one config per variant`,
      )
    runs.push({ dir, variant, seed: state.run.seed, steps: state.steps, run: state.run })
  }
  return { runs, protocol: first!.protocol, tokenizer: tokenizer! }
}

export interface CollectOptions {
  runs: readonly CollectedRun[]
  protocol: TrainProtocol
  /** The dataset the runs were trained on (loaded with their tokenizer), for the full-split evaluation. */
  data: Dataset
  /** Where results.md/json and val_loss.svg go (a folder of its own, as for compare). */
  out: string
  /** Order of the table, the first is the baseline (default: mha if collected, then the order found). */
  variants?: readonly string[]
  threads?: number
  provider?: Provider
  onNote?: (message: string) => void
  probeDecode?: DecodeProber
}

/** The table of compare from runs trained anywhere (see readCollectedRuns): the same statistics and files. */
export async function collectCompare(opts: CollectOptions): Promise<CompareResult> {
  const found = [...new Set(opts.runs.map((r) => r.variant))]
  const order = opts.variants ?? (found.includes('mha') ? ['mha', ...found.filter((v) => v !== 'mha')] : found)
  const unknown = order.filter((v) => !found.includes(v))
  if (unknown.length) throw new TrainError(`--variants names ${unknown.join(', ')}, which no collected run trained (found: ${found.join(', ')})`)
  const left = found.filter((v) => !order.includes(v))
  if (left.length)
    throw new TrainError(`collected runs of ${left.join(', ')} are not in --variants ${order.join(',')}; add them or leave those directories out`)
  if (opts.data.name !== opts.protocol.data) throw new TrainError(`the runs were trained on ${opts.protocol.data}, not ${opts.data.name}`)
  const out = realRunDir(opts.out)
  checkCompareDir(out)
  const collected = opts.runs.map((r) => realRunDir(r.dir)).sort()
  const marker = readMarker(out)
  if (marker && JSON.stringify(marker.collected ?? null) !== JSON.stringify(collected))
    throw new TrainError(
      `${out} holds the results of another comparison (${marker.collected ? `collected from ${marker.collected.length} other run directories` : 'trained there by moas compare'}); --collect writes its table into a folder of its own: choose a new --out`,
    )
  const lock = RunLock.acquire(out, opts.onNote)
  try {
    mkdirSync(out, { recursive: true })
    writeFileAtomic(join(out, COMPARE_FILES.marker), `${JSON.stringify({ format: 'moas-compare', version: 1, collected })}\n`)
    const summaries = new Map<string, RunSummary>()
    for (const r of opts.runs) {
      let summary = readSummary(r.dir, r.steps, opts.data.name === 'synthetic', !!opts.probeDecode)
      if (!summary) {
        summary = await summarize(r.dir, r.variant, r.seed, r.steps, opts.data, opts.threads, opts.provider, opts.probeDecode)
        try {
          writeFileAtomic(join(r.dir, COMPARE_FILES.summary), `${JSON.stringify(summary, null, 2)}\n`)
        } catch {
          opts.onNote?.(`could not cache ${COMPARE_FILES.summary} in ${r.dir} (read-only?); it is recomputed next time`)
        }
      }
      summaries.set(`${r.variant}/${r.seed}`, summary)
    }
    const configs = new Map(order.map((v) => [v, opts.runs.find((r) => r.variant === v)!.run.model]))
    const model = opts.runs[0].run.model
    const preset =
      PRESET_NAMES.find((p) => {
        const c = modelConfig(p, model.vocab_size, { attention: model.attention })
        return SHARED_MODEL_KEYS.every((k) => c[k] === model[k])
      }) ?? 'custom'
    const seeds = [...new Set(opts.runs.map((r) => r.seed))].sort((a, b) => a - b)
    const result = tabulate({ variants: order, seeds, protocol: opts.protocol, data: opts.data, provider: opts.provider, preset }, summaries, configs)
    writeFileAtomic(join(out, COMPARE_FILES.json), `${JSON.stringify(result, null, 2)}\n`)
    writeFileAtomic(join(out, COMPARE_FILES.markdown), renderMarkdown(result))
    writeFileAtomic(join(out, COMPARE_FILES.chart), renderChart(result))
    return result
  } finally {
    lock.release()
  }
}
