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

import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { GptConfigInput } from '@moas/gpt'
import { writeFileAtomic } from '@moas/gpt/node'
import type { Provider } from '@moas/tensor-core'
import { COMPARE_FILES, checkCompareDir, readMarker } from './compare/folder'
import { writeCompareResults } from './compare/render'
import { cachedSummary, type DecodeProber, type RunSummary, readSummary } from './compare/summary'
import { type CompareResult, tabulate } from './compare/table'
import { TrainError } from './errors'
import { type Dataset, diffRunConfigs, makeRunConfig, modelConfig, type TrainPresetName, type TrainProtocol } from './presets'
import { RunLock, realRunDir } from './run-lock'
import { type LogRecord, readRun, type TrainResult, train } from './train'
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

const runDir = (out: string, variant: string, seed: number) => join(out, variant, `seed-${seed}`)
const exists = (dir: string) => existsSync(dir) || existsSync(`${dir}.next`) || existsSync(`${dir}.prev`)

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
        summary = await cachedSummary(dir, { variant, seed, steps }, opts.data, opts)
      }
      summaries.set(`${variant}/${seed}`, summary)
    }
    if (interrupted) break
  }

  const result = tabulate(opts, summaries, configs)
  writeCompareResults(out, result)
  return result
}

export * from './compare/collect'
export { COMPARE_FILES } from './compare/folder'
export { renderChart, renderMarkdown } from './compare/render'
export type { DecodeProbe, DecodeProber, RunSummary } from './compare/summary'
export { ALPHA, type CompareResult, type Stat, type VariantResult, type Verdict } from './compare/table'
