/** `compare --collect`: one table from finished run directories trained anywhere, refusing runs that do not belong together. */

import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { CharTokenizer } from '@moas/gpt'
import { writeFileAtomic } from '@moas/gpt/node'
import type { Provider } from '@moas/tensor-core'
import { TrainError } from '../errors'
import { type Dataset, diffRunConfigs, modelConfig, PRESET_NAMES, protocolOfRun, type RunConfig, type TrainProtocol } from '../presets'
import { RunLock, realRunDir } from '../run-lock'
import { readRun } from '../train'
import { COMPARE_FILES, checkCompareDir, readMarker } from './folder'
import { writeCompareResults } from './render'
import { cachedSummary, type DecodeProber, type RunSummary } from './summary'
import { type CompareResult, tabulate } from './table'
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
      const summary = await cachedSummary(r.dir, r, opts.data, opts)
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
    writeCompareResults(out, result)
    return result
  } finally {
    lock.release()
  }
}
