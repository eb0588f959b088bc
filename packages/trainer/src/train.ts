/**
 * The training loop: the paper's protocol (random batches, AdamW, eval every `eval_interval` updates on
 * `eval_iters` random val batches, a final eval), a JSON-lines log, and checkpoints that never lose a run.
 *
 * A run directory DIR is a checkpoint (config.json, model.safetensors, tokenizer.json) plus
 *   optimizer.safetensors  Adam moments `adam.m.<param>`, `adam.v.<param>` (float32)
 *   trainer_state.json     step, batch-sampler and dropout-noise generator states, lr position, run config
 *   log.jsonl              one record per update; eval updates add val_loss
 * Every save is atomic (saveCheckpoint: DIR.next → DIR), so a kill at any moment leaves the previous
 * checkpoint readable. Between saves, records are appended to DIR/log.jsonl; a resume keeps the records up
 * to the checkpoint's step and drops the rest, so the log reads as if the run had never stopped.
 *
 * Exact resume: everything random is drawn from generators whose state is saved (batches, dropout noise),
 * or is a pure function of (seed, step) (eval batches: `deriveSeed(seed, 'eval', step)`, so an eval never
 * depends on when the run was interrupted); the lr is a function of the step; parameters and moments are
 * saved bit for bit. So N updates, or N/2 + resume + N/2, give identical losses and parameters.
 */

import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { auxLossWeight, CHECKPOINT_FILES, CharTokenizer, type Checkpoint, CheckpointError, readSafetensors, type SafeTensor, writeSafetensors } from '@moas/gpt'
import { fsErrorReason, loadCheckpoint, saveCheckpoint, writeFileAtomic } from '@moas/gpt/node'
import { momentNames, type Provider } from '@moas/tensor-core'
import { BatchSampler, type BatchSamplerState } from './data/batches'
import { DataError } from './data/errors'
import { DivergenceError, TrainError } from './errors'
import { DivergedStep, freshStart, type LogRecord, TrainLoop } from './loop'
import { NOISE_LAYOUTS, type NoiseLayout, type NoiseState, Xoshiro128 } from './noise'
import type { OptimizerState } from './training-session'

export type { LogRecord } from './loop'

import { type Dataset, deriveSeed, diffRunConfigs, type RunConfig } from './presets'
import { RunLock, realRunDir } from './run-lock'

export const RUN_FILES = { state: 'trainer_state.json', optimizer: 'optimizer.safetensors', log: 'log.jsonl' } as const

export interface TrainerState {
  format: 'moas-trainer-state'
  /** 2 since causal attention masks are drawn by rows (noise_layout); a version-1 state resumes with 'full'. */
  version: 1 | 2
  step: number
  steps: number
  finished: boolean
  sampler: BatchSamplerState
  noise: NoiseState
  /** How the noise stream fills causal attention masks (absent in version 1: 'full'). */
  noise_layout?: NoiseLayout
  /** Eval batches are drawn from deriveSeed(seed, 'eval', step): nothing to save. */
  eval_batches: 'derived from (seed, step)'
  lr: { next: number }
  checkpoint_interval: number
  run: RunConfig
}

export interface TrainOptions {
  /** The run directory (it becomes the checkpoint). */
  out: string
  run: RunConfig
  /** Total updates (a resume may raise it). */
  steps: number
  /** Save every this many updates (0: only at the start and the end). */
  checkpointInterval: number
  data: Dataset
  /** Continue the run in `out` (its run config must equal `run`). */
  resume?: boolean
  /** Aborting saves a checkpoint after the current update and returns with status 'interrupted'. */
  signal?: AbortSignal
  threads?: number
  /** Execution provider of the training and eval sessions (default cpu); recorded in every log record. */
  provider?: Provider
  onRecord?: (record: LogRecord) => void
  onStart?: (info: { step: number; steps: number; resumed: boolean }) => void
  /** Things found and repaired on the way (a stale lock, a torn log line), one line each. */
  onNote?: (message: string) => void
}

export interface TrainResult {
  out: string
  step: number
  steps: number
  status: 'finished' | 'interrupted'
  /** val_loss of the last eval (null if none yet). */
  finalValLoss: number | null
  /** Median update time over the whole log, ms. */
  msPerIter: number | null
  records: LogRecord[]
}

export interface SavedRun {
  checkpoint: Checkpoint
  state: TrainerState
  optimizer: OptimizerState
  tokenizer: CharTokenizer
  /** Records of log.jsonl up to the checkpoint's step. */
  records: LogRecord[]
  /** What was found and repaired (a torn log line, records past the checkpoint), for the user to read. */
  notes: string[]
}

/** Read a run directory saved by train(), validating the training state next to the model. */
export async function readRun(dir: string): Promise<SavedRun> {
  const checkpoint = await loadCheckpoint(dir)
  const from = checkpoint.dir
  const statePath = join(from, RUN_FILES.state)
  if (!existsSync(statePath))
    throw new CheckpointError(`${dir} has no ${RUN_FILES.state}: it is a model checkpoint without training state; it can be evaluated but not resumed`)
  const state = parseState(readFileSync(statePath, 'utf8'), statePath)
  const optPath = join(from, RUN_FILES.optimizer)
  if (!existsSync(optPath)) throw new CheckpointError(`${optPath}: missing; a resumable checkpoint needs the Adam moments`)
  let tensors: Map<string, SafeTensor>
  let optMeta: Record<string, string>
  try {
    ;({ tensors, metadata: optMeta } = readSafetensors(readFileSync(optPath), optPath))
  } catch (e) {
    throw new CheckpointError((e as Error).message, { cause: e })
  }
  const m = new Map<string, Float32Array>()
  const v = new Map<string, Float32Array>()
  for (const [name, p] of checkpoint.params) {
    for (const [kind, into] of [
      ['m', m],
      ['v', v],
    ] as const) {
      const stored = momentNames(name)[kind] // the names tensor-core's AdamW gives the moments
      const t = tensors.get(stored)
      if (t?.dtype !== 'float32' || t.data.length !== p.length)
        throw new CheckpointError(`${optPath}: '${stored}' is missing or does not match the parameter (${p.length} float32 values)`)
      const data = t.data as Float32Array
      const bad = data.findIndex((x) => !Number.isFinite(x) || (kind === 'v' && x < 0))
      if (bad >= 0)
        throw new CheckpointError(
          `${optPath}: '${stored}'[${bad}] is ${data[bad]}; Adam's ${kind === 'v' ? 'second moment must be finite and >= 0' : 'first moment must be finite'}, so this optimizer state was not written by a healthy run. Resume from an earlier checkpoint, or start again`,
        )
      into.set(name, data)
    }
  }
  let tokenizer: CharTokenizer
  try {
    tokenizer = CharTokenizer.fromJSON(checkpoint.tokenizer)
  } catch (e) {
    throw new CheckpointError(`${join(from, 'tokenizer.json')}: ${(e as Error).message}`)
  }
  checkConsistency(dir, checkpoint, state, optMeta, m, v)
  const notes: string[] = []
  const log = readLogChecked(join(from, RUN_FILES.log))
  if (log.torn) notes.push(`${RUN_FILES.log}: its last line was cut short (the process stopped mid-write); dropped, and the log is rewritten at the checkpoint`)
  if (log.damaged.length)
    notes.push(
      `${RUN_FILES.log}: line${log.damaged.length > 1 ? 's' : ''} ${log.damaged.join(', ')} ${log.damaged.length > 1 ? 'are' : 'is'} not a log record (damaged on disk or edited); dropped, every intact record after ${log.damaged.length > 1 ? 'them' : 'it'} kept`,
    )
  const records = log.records.filter((r) => r.step <= state.step)
  if (records.length < log.records.length)
    notes.push(`${RUN_FILES.log}: ${log.records.length - records.length} record(s) after the checkpoint's step ${state.step} dropped (they are trained again)`)
  const steps = records.map((r) => r.step)
  if (steps.some((s, i) => s !== i + 1) || steps.length !== state.step)
    notes.push(
      `${RUN_FILES.log}: holds ${records.length} record(s) for ${state.step} update(s) (steps missing or out of order); the checkpoint itself is consistent, so training continues, but the log's curve has gaps`,
    )
  return { checkpoint, state, optimizer: { step: state.step, m, v }, tokenizer, records, notes }
}

/**
 * The files of a run directory must describe the same moment of the same run: trainer_state.json's step
 * equals config.json's training.step and the optimizer's saved step, its model config is the checkpoint's,
 * its sampler was built for this run's block and batch sizes and has drawn step × accum batches, and the
 * Adam moments are finite. A mismatch means the files were edited or mixed from different saves.
 */
function checkConsistency(
  dir: string,
  ck: Checkpoint,
  state: TrainerState,
  optMeta: Record<string, string>,
  m: Map<string, Float32Array>,
  v: Map<string, Float32Array>,
): void {
  const problems: string[] = []
  const trainingStep = (ck.extra.training as { step?: unknown } | undefined)?.step
  if (trainingStep !== state.step) problems.push(`config.json's training.step is ${JSON.stringify(trainingStep)}`)
  if (optMeta.step !== undefined && Number(optMeta.step) !== state.step) problems.push(`${RUN_FILES.optimizer} was saved at step ${optMeta.step}`)
  const modelDiff = diffRunConfigs(ck.config, state.run.model)
  if (modelDiff.length) problems.push(`its run.model differs from config.json's model (${modelDiff.join('; ')})`)
  const s = state.sampler
  if (s.blockSize !== state.run.model.block_size || s.batchSize !== state.run.batch_size)
    problems.push(`its batch sampler is for block ${s.blockSize} × batch ${s.batchSize}, the run uses ${state.run.model.block_size} × ${state.run.batch_size}`)
  if (s.step !== state.step * state.run.accum)
    problems.push(`its batch sampler has drawn ${s.step} batches, ${state.step} update(s) × accum ${state.run.accum} draw ${state.step * state.run.accum}`)
  if (state.step > state.steps) problems.push(`its step ${state.step} is beyond its steps ${state.steps}`)
  for (const [name, arr] of [...m, ...v]) {
    if (arr.some((x) => !Number.isFinite(x))) {
      problems.push(`the Adam moments of '${name}' hold non-finite values`)
      break
    }
  }
  if (problems.length)
    throw new CheckpointError(
      `${dir}: ${RUN_FILES.state} says step ${state.step}, but ${problems.join('; ')}: the run directory's files do not belong together (edited, or copied from different saves); resume from an intact copy, or start a new run`,
    )
}

function parseState(text: string, path: string): TrainerState {
  // biome-ignore lint/suspicious/noExplicitAny: parsed JSON, validated field by field below
  let s: any
  try {
    s = JSON.parse(text)
  } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON (${(e as Error).message})`)
  }
  const ok =
    s &&
    s.format === 'moas-trainer-state' &&
    (s.version === 1 || (s.version === 2 && NOISE_LAYOUTS.includes(s.noise_layout))) &&
    Number.isInteger(s.step) &&
    s.step >= 0 &&
    Number.isInteger(s.steps) &&
    typeof s.sampler === 'object' &&
    Array.isArray(s.noise) &&
    typeof s.run === 'object' &&
    s.run &&
    typeof s.run.model === 'object'
  if (!ok)
    throw new CheckpointError(
      `${path}: not a moas trainer state (expected format "moas-trainer-state" version 1, or 2 with noise_layout ${NOISE_LAYOUTS.map((l) => `"${l}"`).join(' or ')}, with step, steps, sampler, noise, run)`,
    )
  return s as TrainerState
}

/** Records of a log file; a torn last line (a crash mid-write) is dropped. */
export function readLog(path: string): LogRecord[] {
  return readLogChecked(path).records
}

/**
 * readLog, also saying what was dropped: a torn last line (the process stopped mid-write), and the numbers
 * of damaged lines elsewhere (not a JSON record with an integer step); every intact record is kept.
 */
export function readLogChecked(path: string): { records: LogRecord[]; torn: boolean; damaged: number[] } {
  if (!existsSync(path)) return { records: [], torn: false, damaged: [] }
  const out: LogRecord[] = []
  const bad: number[] = []
  const lines = readFileSync(path, 'utf8').split('\n')
  let last = lines.length
  while (last > 0 && !lines[last - 1].trim()) last--
  lines.slice(0, last).forEach((line, i) => {
    if (!line.trim()) return
    try {
      const r = JSON.parse(line)
      if (Number.isInteger(r?.step)) return void out.push(r)
    } catch {}
    bad.push(i + 1)
  })
  const torn = bad.at(-1) === last
  return { records: out, torn, damaged: torn ? bad.slice(0, -1) : bad }
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits

/** Median of the update times of a log (robust to the first, warm-up update and to eval pauses). */
export function medianMs(records: readonly LogRecord[]): number | null {
  const ms = records
    .map((r) => r.ms)
    .filter((x) => Number.isFinite(x))
    .sort((a, b) => a - b)
  if (!ms.length) return null
  const mid = ms.length >> 1
  return round(ms.length % 2 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2, 1)
}

function checkData(run: RunConfig, data: Dataset): void {
  if (data.tokenizer.vocabSize !== run.model.vocab_size)
    throw new DataError(
      `the tokenizer has ${data.tokenizer.vocabSize} symbols but the model's vocab_size is ${run.model.vocab_size} (one embedding row per symbol): on the command line drop --set vocab_size (it follows the data); in code build the model config from the data, modelConfig(preset, data.tokenizer.vocabSize)`,
    )
  if (data.train.length !== run.data.train_tokens || data.val.length !== run.data.val_tokens || data.name !== run.data.name)
    throw new DataError(
      `the data (${data.name}: ${data.train.length} train / ${data.val.length} val tokens) is not the run's (${run.data.name}: ${run.data.train_tokens} / ${run.data.val_tokens})`,
    )
  if (data.val.length <= run.model.block_size)
    throw new DataError(`the val split has ${data.val.length} tokens; the eval needs more than block_size = ${run.model.block_size}`)
}

/**
 * A fresh run needs an empty `out`. What an interrupted first save leaves (DIR.next without its COMPLETE
 * marker, and no DIR or DIR.prev) holds nothing to lose: it is removed, with a note. A complete DIR.next
 * or a DIR.prev is a real checkpoint: the user is sent to --resume.
 */
function checkFreshDir(out: string, note: (m: string) => void): void {
  const next = `${out}.next`
  const prev = `${out}.prev`
  const holds = existsSync(out) && readdirSync(out).length > 0
  if (!holds && !existsSync(prev) && existsSync(next) && !existsSync(join(next, CHECKPOINT_FILES.complete))) {
    rmSync(next, { recursive: true, force: true })
    note(`removed ${next}: an interrupted first save that never completed (no checkpoint was lost)`)
  }
  if (holds || existsSync(next) || existsSync(prev))
    throw new TrainError(`${out} already holds a run or other files; pass --resume ${out} to continue it, or choose an empty --out`)
}

/**
 * The saved batch-sampler state must be the one this run's seed reaches after step × accum batches: replay
 * the draws (cheap: indices only) and compare, so an edited or foreign trainer_state.json is refused
 * instead of silently changing the batch order.
 */
function checkSamplerTrajectory(out: string, run: RunConfig, data: Dataset, state: TrainerState): void {
  const replay = new BatchSampler(data.train, run.model.block_size, run.batch_size, deriveSeed(run.seed, 'batches'))
  replay.skip(state.step * run.accum)
  if (replay.state().rng !== state.sampler.rng)
    throw new CheckpointError(
      `${out}: ${RUN_FILES.state}'s batch-sampler state is not the one seed ${run.seed} reaches at step ${state.step}: the file was edited or comes from another run; resume from an intact copy, or start a new run`,
    )
}

/**
 * What to change after a divergence. When the routers' auxiliary loss (balance or KV budget) is what blew up
 * while the cross entropy was still finite, its weight is the knob, not the learning rate.
 */
function divergenceAdvice(r: LogRecord | undefined, run: RunConfig): string {
  const ce = r?.ce
  const aux = r && ce !== undefined ? r.loss - ce : undefined // the weighted auxiliary term (balance is logged unweighted)
  if (ce !== undefined && aux !== undefined && Number.isFinite(ce) && (!Number.isFinite(aux) || aux > ce)) {
    const { key, weight: now } = auxLossWeight(run.model)
    return `The routers' auxiliary loss diverged (weighted, ${aux.toPrecision(3)} against a cross entropy of ${ce.toPrecision(3)}): lower its weight, --set ${key}=… (now ${now}), or add --clip 1.0`
  }
  return `Try a lower --lr (now ${run.lr}), --clip 1.0, or a warmup (--schedule cosine --warmup 100)`
}

/** A save that failed for lack of space or permission: say where, why, and what is intact. */
function saveError(e: unknown, out: string, step: number, lastSaved: number | null): unknown {
  const known = fsErrorReason(e)
  if (!known || !SAVE_ERRORS.includes(known.code)) return e
  const remedy = known.code === 'ENOSPC' || known.code === 'EDQUOT' ? 'free space' : `make ${out} writable`
  const intact =
    lastSaved === null
      ? `nothing was trained yet and no checkpoint exists; ${remedy} or choose another --out, then start again`
      : `the last good checkpoint (step ${lastSaved}) is intact in ${out}; ${remedy}, then continue with --resume ${out}`
  return new TrainError(
    `could not save the checkpoint of step ${step} in ${out} (${known.code}: ${known.why}, at ${(e as NodeJS.ErrnoException).path ?? out}); ${intact}`,
  )
}

/** The file-system errors a save names as such (the run directory was writable when the run started). */
const SAVE_ERRORS = ['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM']

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const out = realRunDir(opts.out)
  const { run, data, steps } = opts
  if (!(Number.isInteger(steps) && steps >= 0)) throw new TrainError(`steps must be a non-negative integer, got ${steps}`)
  checkData(run, data)
  const note = opts.onNote ?? (() => {})
  const lock = RunLock.acquire(out, note)
  try {
    return await trainLocked(opts, out, note)
  } finally {
    lock.release()
  }
}

async function trainLocked(opts: TrainOptions, out: string, note: (m: string) => void): Promise<TrainResult> {
  const { run, data, steps } = opts
  let params: ReadonlyMap<string, Float32Array>
  let optimizer: OptimizerState | undefined
  let sampler: BatchSampler
  let noise: Xoshiro128
  // A version-1 state was written by a trainer that drew causal masks in full: keep drawing them so.
  let noiseLayout: NoiseLayout = 'causal-rows'
  let records: LogRecord[]
  let mustSave: boolean
  if (opts.resume) {
    const saved = await readRun(out)
    for (const n of saved.notes) note(n)
    if (steps < saved.state.step)
      throw new TrainError(
        `cannot resume ${out} to ${steps} steps: it is already at step ${saved.state.step}; give more steps (or none, to finish its ${saved.state.steps})`,
      )
    const diff = diffRunConfigs(saved.state.run, run)
    if (diff.length)
      throw new TrainError(
        `cannot resume ${out}: the run config differs from the checkpoint's (${diff.join('; ')}); resume with the same settings, or start a new run with another --out`,
      )
    if (saved.tokenizer.vocab.join('') !== data.tokenizer.vocab.join(''))
      throw new TrainError(`cannot resume ${out}: the data's vocabulary differs from the checkpoint's tokenizer`)
    params = saved.checkpoint.params
    optimizer = saved.optimizer
    sampler = BatchSampler.fromState(data.train, saved.state.sampler)
    checkSamplerTrajectory(out, run, data, saved.state)
    noise = Xoshiro128.fromState(saved.state.noise)
    noiseLayout = saved.state.noise_layout ?? 'full'
    records = saved.records
    // Recovering from a crash mid-save reads DIR.next or DIR.prev: save once so DIR is whole again.
    mustSave = saved.checkpoint.dir !== out
  } else {
    checkFreshDir(out, note)
    ;({ params, sampler, noise } = freshStart(run, data))
    records = []
    mustSave = true // a run directory is a valid checkpoint from its first moment
  }
  const loop = await TrainLoop.create(run, data, steps, { params, optimizer, sampler, noise, noiseLayout }, { provider: opts.provider, threads: opts.threads })
  const { session } = loop
  const logPath = join(out, RUN_FILES.log)
  const logText = () => records.map((r) => `${JSON.stringify(r)}\n`).join('')
  let lastSaved: number | null = opts.resume ? session.step : null

  const save = async () => {
    try {
      await saveNow()
    } catch (e) {
      throw saveError(e, out, session.step, lastSaved)
    }
  }
  const saveNow = async () => {
    const step = session.step
    const state: TrainerState = {
      format: 'moas-trainer-state',
      version: 2,
      step,
      steps,
      finished: step >= steps,
      sampler: sampler.state(),
      noise: session.noiseState(),
      noise_layout: session.noiseLayout,
      eval_batches: 'derived from (seed, step)',
      lr: { next: loop.nextLr },
      checkpoint_interval: opts.checkpointInterval,
      run,
    }
    const opt = await session.optimizerState()
    const params = await session.params()
    // Nothing non-finite is ever saved: an update that overflowed (a huge --lr) leaves the last good checkpoint.
    const bad = firstNonFinite(params, 'parameter') ?? firstNonFinite(opt.m, 'Adam first moment') ?? firstNonFinite(opt.v, 'Adam second moment')
    if (bad)
      throw new DivergenceError(
        `training diverged: ${bad} after step ${step}; not saved. The last good checkpoint (step ${lastSaved ?? 0}) is in ${out}. ` +
          divergenceAdvice(records.at(-1), run),
        step,
        lastSaved ?? 0,
      )
    const moments = new Map<string, { dtype: 'float32'; shape: number[]; data: Float32Array }>()
    for (const [name, m] of opt.m) moments.set(momentNames(name).m, { dtype: 'float32', shape: [m.length], data: m })
    for (const [name, v] of opt.v) moments.set(momentNames(name).v, { dtype: 'float32', shape: [v.length], data: v })
    const { model, ...training } = run
    await saveCheckpoint(out, {
      config: model,
      params,
      tokenizer: data.tokenizer.toJSON(),
      extra: { training: { ...training, step, steps } },
      extraFiles: {
        [RUN_FILES.optimizer]: writeSafetensors(moments, { step: String(step) }),
        [RUN_FILES.state]: `${JSON.stringify(state, null, 2)}\n`,
        [RUN_FILES.log]: logText(),
      },
      mutableFiles: [RUN_FILES.log], // appended to between saves; checked record by record on resume
    })
    lastSaved = step
  }

  try {
    if (mustSave) await save()
    else {
      // Drop records written after the checkpoint (the run died before saving them); tmp + rename so a
      // crash here cannot truncate the log.
      writeFileAtomic(logPath, logText())
    }
    opts.onStart?.({ step: session.step, steps, resumed: !!opts.resume })
    const emit = (r: LogRecord) => {
      records.push(r)
      appendFileSync(logPath, `${JSON.stringify(r)}\n`)
      opts.onRecord?.(r)
    }
    let interrupted = false
    while (!loop.done) {
      if (opts.signal?.aborted) {
        interrupted = true
        break
      }
      let rec: LogRecord
      try {
        rec = await loop.next()
      } catch (e) {
        if (!(e instanceof DivergedStep)) throw e
        appendFileSync(logPath, `${JSON.stringify(e.record)}\n`) // for diagnosis; dropped by a resume
        const r = e.record
        const what = !Number.isFinite(r.loss) ? `loss ${r.loss}` : `gradient norm ${r.grad_norm}`
        throw new DivergenceError(
          `training diverged: ${what} at step ${r.step}; stopped without saving it. The last good checkpoint (step ${lastSaved ?? 0}) is in ${out}. ` +
            divergenceAdvice(r, run),
          r.step,
          lastSaved ?? 0,
        )
      }
      const step = rec.step
      emit(rec)
      if (step === steps || (opts.checkpointInterval > 0 && step % opts.checkpointInterval === 0)) await save()
    }
    if (interrupted && lastSaved !== session.step) await save()
    const last = [...records].reverse().find((r) => r.val_loss !== undefined)
    return {
      out,
      step: session.step,
      steps,
      status: interrupted ? 'interrupted' : 'finished',
      finalValLoss: last?.val_loss ?? null,
      msPerIter: medianMs(records),
      records,
    }
  } finally {
    await loop.release()
  }
}

/** '<what> <name>[i] is <value>' for the first non-finite value of the tensors, else null. */
function firstNonFinite(tensors: ReadonlyMap<string, Float32Array>, what: string): string | null {
  for (const [name, data] of tensors) {
    const i = data.findIndex((x) => !Number.isFinite(x))
    if (i >= 0) return `${what} ${name}[${i}] is ${data[i]}`
  }
  return null
}
