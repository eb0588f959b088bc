/** One finished run summarized for a comparison table: its curve, full-split loss, task accuracy, decode probe. */

import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { CHECKPOINT_FILES, isKvRouteControl, type LoadedModel } from '@moas/gpt'
import { loadModel, writeFileAtomic } from '@moas/gpt/node'
import type { Provider } from '@moas/tensor-core'
import { SYNTHETIC_TASKS, type SyntheticTask } from '../data/synthetic'
import { evaluateTokens, syntheticTaskAccuracy } from '../evaluate'
import type { Dataset } from '../presets'
import { medianMs, readLog } from '../train'
import { COMPARE_FILES } from './folder'
export interface RunSummary {
  variant: string
  seed: number
  steps: number
  final_val_loss: number | null
  full_val_loss: number
  full_val_tokens: number
  ms_per_iter: number | null
  curve: { step: number; val_loss: number }[]
  /** Synthetic data only: accuracy on the determined characters of each task of the val split (null: not measurable, a moas-kv control has no logits graph). */
  task_accuracy?: Record<SyntheticTask, number | null> | null
  /** The final model decoding val text with its KV cache (CompareOptions.probeDecode), when measured (null: a moas-kv control has no decoder). */
  decode?: DecodeProbe | null
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

/**
 * summary.json is a cache of a run's results: sealed with the checkpoint it summarizes (the sha256 of its
 * COMPLETE manifest) and a sha256 of its own fields, so a damaged, edited or stale cache is recomputed,
 * never read into a table.
 */
const sha256 = (text: string | Buffer) => createHash('sha256').update(text).digest('hex')
const checkpointId = (dir: string) => {
  try {
    return sha256(readFileSync(join(dir, CHECKPOINT_FILES.complete)))
  } catch {
    return 'none'
  }
}

function sealSummary(dir: string, summary: RunSummary): string {
  const body = { ...summary, checkpoint: checkpointId(dir) }
  return `${JSON.stringify({ ...body, sha256: sha256(JSON.stringify(body)) }, null, 2)}\n`
}

/** The cached summary when it is current for this protocol (null: missing, damaged, stale or for other flags). */
export function readSummary(dir: string, steps: number, synthetic: boolean, decode = false): RunSummary | null {
  const path = join(dir, COMPARE_FILES.summary)
  if (!existsSync(path)) return null
  try {
    const { sha256: seal, ...body } = JSON.parse(readFileSync(path, 'utf8')) as RunSummary & { checkpoint: string; sha256: string }
    if (seal !== sha256(JSON.stringify(body)) || body.checkpoint !== checkpointId(dir)) return null
    const { checkpoint: _c, ...s } = body
    return s.steps === steps && Number.isFinite(s.full_val_loss) && (!synthetic || s.task_accuracy !== undefined) && (!decode || s.decode !== undefined)
      ? s
      : null
  } catch {
    return null // torn or foreign: recompute it
  }
}

/** The summary of a finished run: its curve from log.jsonl, and the full-split loss of its final model. */
export async function summarize(
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
  const full = await evaluateTokens(model, data.val, { threads, batchSize: 12, provider, seed })
  const control = isKvRouteControl(model.config) // trains and evaluates only: no logits graph, no decoder
  const synthetic = data.name === 'synthetic' && !control
  const task = synthetic ? await syntheticTaskAccuracy(model, model.tokenizer.decode(data.val), { threads, provider }) : null
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
    ...(control && data.name === 'synthetic' ? { task_accuracy: null } : {}),
    ...(probeDecode ? { decode: control ? null : await probeDecode(model, data.val) } : {}),
  }
}

/**
 * A run's summary: summary.json when it is current, else computed and cached there (a read-only run
 * directory is noted and recomputed next time). compare and collect both read runs through it.
 */
export async function cachedSummary(
  dir: string,
  run: { variant: string; seed: number; steps: number },
  data: Dataset,
  opts: { threads?: number; provider?: Provider; probeDecode?: DecodeProber; onNote?: (m: string) => void },
): Promise<RunSummary> {
  const cached = readSummary(dir, run.steps, data.name === 'synthetic', !!opts.probeDecode)
  if (cached) return cached
  const summary = await summarize(dir, run.variant, run.seed, run.steps, data, opts.threads, opts.provider, opts.probeDecode)
  try {
    writeFileAtomic(join(dir, COMPARE_FILES.summary), sealSummary(dir, summary))
  } catch {
    opts.onNote?.(`could not cache ${COMPARE_FILES.summary} in ${dir} (read-only?); it is recomputed next time`)
  }
  return summary
}
