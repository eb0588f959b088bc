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
import { type Checkpoint, CheckpointError, readSafetensors, writeSafetensors } from '@moas/gpt'
import { loadCheckpoint, saveCheckpoint } from '@moas/gpt/node'
import { momentNames } from '@moas/tensor-core'
import { existsSync, readFileSync, readdirSync, renameSync, writeFileSync, appendFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { BatchSampler, type BatchSamplerState } from './data/batches'
import { CharTokenizer } from '@moas/inference'
import { DataError } from './data/errors'
import { EvalSession, type OptimizerState, TrainingSession, initialParams } from './engine'
import { DivergenceError, TrainError } from './errors'
import { type NoiseState, Xoshiro128 } from './noise'
import { type Dataset, type RunConfig, deriveSeed, diffRunConfigs, lrSchedule } from './presets'
import { lrAt } from './schedule'

export const RUN_FILES = { state: 'trainer_state.json', optimizer: 'optimizer.safetensors', log: 'log.jsonl' } as const

/** One line of log.jsonl. */
export interface LogRecord {
  /** Updates done (1-based). */
  step: number
  /** Training loss of this update (ce + balance_weight · balance), nats. */
  loss: number
  ce: number
  balance: number
  lr: number
  grad_norm: number
  /** Wall time of the update (batch, noise, forward + backward + AdamW), ms. */
  ms: number
  /** Mean eval-mode loss over eval_iters random val batches (eval updates only). */
  val_loss?: number
  eval_ms?: number
}

export interface TrainerState {
  format: 'moas-trainer-state'
  version: 1
  step: number
  steps: number
  finished: boolean
  sampler: BatchSamplerState
  noise: NoiseState
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
  onRecord?: (record: LogRecord) => void
  onStart?: (info: { step: number; steps: number; resumed: boolean }) => void
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
}

/** Read a run directory saved by train(), validating the training state next to the model. */
export async function readRun(dir: string): Promise<SavedRun> {
  const checkpoint = await loadCheckpoint(dir)
  const from = checkpoint.dir
  const statePath = join(from, RUN_FILES.state)
  if (!existsSync(statePath)) throw new CheckpointError(`${dir} has no ${RUN_FILES.state}: it is a model checkpoint without training state; it can be evaluated but not resumed`)
  const state = parseState(readFileSync(statePath, 'utf8'), statePath)
  const optPath = join(from, RUN_FILES.optimizer)
  if (!existsSync(optPath)) throw new CheckpointError(`${optPath}: missing; a resumable checkpoint needs the Adam moments`)
  let tensors
  try {
    tensors = readSafetensors(readFileSync(optPath), optPath).tensors
  } catch (e) {
    throw new CheckpointError((e as Error).message, { cause: e })
  }
  const m = new Map<string, Float32Array>()
  const v = new Map<string, Float32Array>()
  for (const [name, p] of checkpoint.params) {
    for (const [kind, into] of [['m', m], ['v', v]] as const) {
      const stored = momentNames(name)[kind] // the names tensor-core's AdamW gives the moments
      const t = tensors.get(stored)
      if (!t || t.dtype !== 'float32' || t.data.length !== p.length) throw new CheckpointError(`${optPath}: '${stored}' is missing or does not match the parameter (${p.length} float32 values)`)
      into.set(name, t.data as Float32Array)
    }
  }
  let tokenizer: CharTokenizer
  try {
    tokenizer = CharTokenizer.fromJSON(checkpoint.tokenizer)
  } catch (e) {
    throw new CheckpointError(`${join(from, 'tokenizer.json')}: ${(e as Error).message}`)
  }
  const records = readLog(join(from, RUN_FILES.log)).filter((r) => r.step <= state.step)
  return { checkpoint, state, optimizer: { step: state.step, m, v }, tokenizer, records }
}

function parseState(text: string, path: string): TrainerState {
  let s: any
  try {
    s = JSON.parse(text)
  } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON (${(e as Error).message})`)
  }
  const ok =
    s && s.format === 'moas-trainer-state' && s.version === 1 && Number.isInteger(s.step) && s.step >= 0 && Number.isInteger(s.steps) &&
    typeof s.sampler === 'object' && Array.isArray(s.noise) && typeof s.run === 'object' && s.run && typeof s.run.model === 'object'
  if (!ok) throw new CheckpointError(`${path}: not a moas trainer state (expected format "moas-trainer-state" version 1 with step, steps, sampler, noise, run)`)
  return s as TrainerState
}

/** Records of a log file; a torn last line (a crash mid-write) is dropped. */
export function readLog(path: string): LogRecord[] {
  if (!existsSync(path)) return []
  const out: LogRecord[] = []
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue
    try {
      out.push(JSON.parse(line))
    } catch {
      break
    }
  }
  return out
}

/** Median of the update times of a log (robust to the first, warm-up update and to eval pauses). */
export function medianMs(records: readonly LogRecord[]): number | null {
  const ms = records.map((r) => r.ms).filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (!ms.length) return null
  const mid = ms.length >> 1
  return round(ms.length % 2 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2, 1)
}

/** The `eval_iters` val batches of the eval at `step` (a pure function of seed and step). */
export function evalBatches(run: RunConfig, val: Int32Array, step: number) {
  const sampler = new BatchSampler(val, run.model.block_size, run.batch_size, deriveSeed(run.seed, 'eval', step))
  return Array.from({ length: run.eval_iters }, () => sampler.next())
}

function checkData(run: RunConfig, data: Dataset): void {
  if (data.tokenizer.vocabSize !== run.model.vocab_size)
    throw new DataError(`the tokenizer has ${data.tokenizer.vocabSize} symbols but the model's vocab_size is ${run.model.vocab_size}; leave vocab_size unset so it follows the data`)
  if (data.train.length !== run.data.train_tokens || data.val.length !== run.data.val_tokens || data.name !== run.data.name)
    throw new DataError(`the data (${data.name}: ${data.train.length} train / ${data.val.length} val tokens) is not the run's (${run.data.name}: ${run.data.train_tokens} / ${run.data.val_tokens})`)
  if (data.val.length <= run.model.block_size) throw new DataError(`the val split has ${data.val.length} tokens; the eval needs more than block_size = ${run.model.block_size}`)
}

function checkFreshDir(out: string): void {
  const leftovers = [`${out}.next`, `${out}.prev`].filter(existsSync)
  const holds = existsSync(out) && readdirSync(out).length > 0
  if (holds || leftovers.length)
    throw new TrainError(`${out} already holds a run or other files; pass --resume ${out} to continue it, or choose an empty --out`)
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const out = resolve(opts.out)
  const { run, data, steps } = opts
  if (!(Number.isInteger(steps) && steps >= 0)) throw new TrainError(`steps must be a non-negative integer, got ${steps}`)
  checkData(run, data)
  const T = run.model.block_size
  let params: ReadonlyMap<string, Float32Array>
  let optimizer: OptimizerState | undefined
  let sampler: BatchSampler
  let noise: Xoshiro128
  let records: LogRecord[]
  let mustSave: boolean
  if (opts.resume) {
    const saved = await readRun(out)
    const diff = diffRunConfigs(saved.state.run, run)
    if (diff.length) throw new TrainError(`cannot resume ${out}: the run config differs from the checkpoint's (${diff.join('; ')}); resume with the same settings, or start a new run with another --out`)
    if (saved.tokenizer.vocab.join('') !== data.tokenizer.vocab.join('')) throw new TrainError(`cannot resume ${out}: the data's vocabulary differs from the checkpoint's tokenizer`)
    params = saved.checkpoint.params
    optimizer = saved.optimizer
    sampler = BatchSampler.fromState(data.train, saved.state.sampler)
    noise = Xoshiro128.fromState(saved.state.noise)
    records = saved.records
    // Recovering from a crash mid-save reads DIR.next or DIR.prev: save once so DIR is whole again.
    mustSave = saved.checkpoint.dir !== out
  } else {
    checkFreshDir(out)
    params = initialParams(run.model, deriveSeed(run.seed, 'init'))
    sampler = new BatchSampler(data.train, T, run.batch_size, deriveSeed(run.seed, 'batches'))
    noise = new Xoshiro128(deriveSeed(run.seed, 'noise'))
    records = []
    mustSave = true // a run directory is a valid checkpoint from its first moment
  }
  const session = await TrainingSession.create(run.model, { batch: run.batch_size, accum: run.accum, optim: optimOf(run) , threads: opts.threads }, { params, optimizer, noise })
  const evaluator = await EvalSession.create(run.model, { threads: opts.threads })
  const schedule = lrSchedule(run, steps)
  const logPath = join(out, RUN_FILES.log)
  const logText = () => records.map((r) => `${JSON.stringify(r)}\n`).join('')
  let lastSaved = session.step

  const save = async () => {
    const step = session.step
    const state: TrainerState = {
      format: 'moas-trainer-state', version: 1, step, steps, finished: step >= steps,
      sampler: sampler.state(), noise: session.noiseState(), eval_batches: 'derived from (seed, step)',
      lr: { next: lrAt(schedule, step) }, checkpoint_interval: opts.checkpointInterval, run,
    }
    const opt = session.optimizerState()
    const moments = new Map<string, { dtype: 'float32'; shape: number[]; data: Float32Array }>()
    for (const [name, m] of opt.m) moments.set(momentNames(name).m, { dtype: 'float32', shape: [m.length], data: m })
    for (const [name, v] of opt.v) moments.set(momentNames(name).v, { dtype: 'float32', shape: [v.length], data: v })
    const { model, ...training } = run
    await saveCheckpoint(out, {
      config: model,
      params: session.params(),
      tokenizer: data.tokenizer.toJSON(),
      extra: { training: { ...training, step, steps } },
      extraFiles: {
        [RUN_FILES.optimizer]: writeSafetensors(moments, { step: String(step) }),
        [RUN_FILES.state]: `${JSON.stringify(state, null, 2)}\n`,
        [RUN_FILES.log]: logText(),
      },
    })
    lastSaved = step
  }

  try {
    if (mustSave) await save()
    else {
      // Drop records written after the checkpoint (the run died before saving them); tmp + rename so a
      // crash here cannot truncate the log.
      writeFileSync(`${logPath}.tmp`, logText())
      renameSync(`${logPath}.tmp`, logPath)
    }
    opts.onStart?.({ step: session.step, steps, resumed: !!opts.resume })
    const emit = (r: LogRecord) => {
      records.push(r)
      appendFileSync(logPath, `${JSON.stringify(r)}\n`)
      opts.onRecord?.(r)
    }
    const fill = (x: BigInt64Array, y: BigInt64Array) => void sampler.nextInto(x, y)
    let interrupted = false
    while (session.step < steps) {
      if (opts.signal?.aborted) {
        interrupted = true
        break
      }
      const lr = lrAt(schedule, session.step)
      const t0 = performance.now()
      const res = await session.update(lr, fill)
      const ms = performance.now() - t0
      const step = session.step
      const rec: LogRecord = { step, loss: res.loss, ce: res.ce, balance: res.balance, lr, grad_norm: res.gradNorm, ms: round(ms, 1) }
      if (!Number.isFinite(res.loss) || !Number.isFinite(res.gradNorm)) {
        appendFileSync(logPath, `${JSON.stringify(rec)}\n`) // for diagnosis; dropped by a resume
        const what = !Number.isFinite(res.loss) ? `loss ${res.loss}` : `gradient norm ${res.gradNorm}`
        throw new DivergenceError(
          `training diverged: ${what} at step ${step}; stopped without saving it. The last good checkpoint (step ${lastSaved}) is in ${out}. ` +
            `Try a lower --lr (now ${run.lr}), --clip 1.0, or a warmup (--schedule cosine --warmup 100)`,
          step,
          lastSaved,
        )
      }
      if (step % run.eval_interval === 0 || step === steps) {
        const e0 = performance.now()
        rec.val_loss = (await evaluator.meanLoss(session.params(), evalBatches(run, data.val, step))).loss
        rec.eval_ms = round(performance.now() - e0, 1)
      }
      emit(rec)
      if (step === steps || (opts.checkpointInterval > 0 && step % opts.checkpointInterval === 0)) await save()
    }
    if (interrupted && lastSaved !== session.step) await save()
    const last = [...records].reverse().find((r) => r.val_loss !== undefined)
    return {
      out, step: session.step, steps, status: interrupted ? 'interrupted' : 'finished',
      finalValLoss: last?.val_loss ?? null, msPerIter: medianMs(records), records,
    }
  } finally {
    await session.release()
    await evaluator.release()
  }
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits

function optimOf(run: RunConfig) {
  return { beta1: run.beta1, beta2: run.beta2, eps: run.eps, weightDecay: run.weight_decay, clipNorm: run.clip ?? undefined }
}
