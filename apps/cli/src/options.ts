/**
 * Option value parsers (zod schemas; a failure becomes commander's one-line "argument ... is invalid")
 * the training-protocol options shared by `train` and `compare`, and text files given as options.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import { totalmem } from 'node:os'
import { CONFIG_KEYS, checkModelFits, checkTrainingFits, didYouMean, type GptConfig, type GptConfigInput, VARIANTS } from '@moas/gpt'
import { maxThreads, PROVIDERS } from '@moas/tensor-core'
import { DATASETS, DataError, decodeText, PRESET_NAMES, SCHEDULES, TRAIN_PRESETS, type TrainPresetName, type TrainProtocol } from '@moas/trainer'
import { type Command, InvalidArgumentError, Option } from 'commander'
import { z } from 'zod'
import { UsageError } from './errors'

function parser<T>(schema: z.ZodType<T>, what: string) {
  return (value: string): T => {
    const r = schema.safeParse(value)
    if (!r.success) throw new InvalidArgumentError(`expected ${what}.`)
    return r.data
  }
}

const numberText = z
  .string()
  .trim()
  .regex(/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/)
  .transform(Number)
// Counts stop at 2^31 - 1: beyond it nothing can be allocated or finished, and typed arrays overflow.
const MAX_COUNT = 2 ** 31 - 1
export const positiveInt = parser(numberText.pipe(z.number().int().min(1).max(MAX_COUNT)), `a positive integer (at most ${MAX_COUNT})`)
export const nonNegativeInt = parser(numberText.pipe(z.number().int().min(0).max(MAX_COUNT)), `an integer >= 0 (at most ${MAX_COUNT})`)
/** Sizes that multiply into memory (sequences per batch, micro-batches, seeds): a smaller cap. */
export const sizeInt = parser(numberText.pipe(z.number().int().min(1).max(65536)), 'a positive integer (at most 65536)')
export const positiveNumber = parser(numberText.pipe(z.number().positive()), 'a number > 0')
export const nonNegativeNumber = parser(numberText.pipe(z.number().min(0)), 'a number >= 0')
export const seedInt = parser(numberText.pipe(z.number().int().min(0).max(0xffffffff)), 'an integer seed in [0, 4294967295]')

/** `--attention <variant>`: one of VARIANTS, else a usage error (exit 2) with a "did you mean". */
export function variantName(value: string): string {
  const v = value.trim()
  if (!(VARIANTS as readonly string[]).includes(v))
    throw new InvalidArgumentError(`unknown attention variant '${value}'${didYouMean(v, VARIANTS)}; choose one of ${VARIANTS.join(', ')}.`)
  return v
}

/** `--variants mha,static-moas,moas` → the names, each checked like --attention. */
export function variantList(value: string): string[] {
  const names = value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean)
  if (!names.length) throw new InvalidArgumentError('expected a comma-separated list of variants, e.g. mha,static-moas,moas.')
  return names.map(variantName)
}

/** `--threads <n>`: a positive integer within what the machine can use (tensor-core's maxThreads). */
export function threadCount(value: string): number {
  const n = positiveInt(value)
  if (n > maxThreads())
    throw new InvalidArgumentError(`${n} is far above this machine's cores; ONNX Runtime starts one thread each: use at most ${maxThreads()}.`)
  return n
}

/** `--device`: the ONNX Runtime execution provider every session of the command uses. */
export const deviceOption = () =>
  new Option('--device <provider>', `ONNX Runtime execution provider: ${PROVIDERS.join(' | ')} (default cpu; cuda needs its libraries, see the README)`)
    .choices(PROVIDERS)
    .default('cpu')

/** Refuse a model (and, given a batch size, a training step) that cannot fit in this machine's memory before anything is allocated. */
export function checkFits(cfg: GptConfig, trainingBatch?: number): GptConfig {
  checkModelFits(cfg, totalmem())
  if (trainingBatch !== undefined) checkTrainingFits(cfg, trainingBatch, totalmem())
  return cfg
}

/** `--set key=value` (repeatable) → a model config object; values are JSON-ish (numbers, true/false, lists of numbers, strings). */
export function collectSet(item: string, previous: Record<string, unknown> = {}): Record<string, unknown> {
  const eq = item.indexOf('=')
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, e.g. --set dropout=0.2 (keys: ${CONFIG_KEYS.join(', ')}).`)
  const key = item.slice(0, eq).trim()
  const raw = item.slice(eq + 1).trim()
  if (!(CONFIG_KEYS as readonly string[]).includes(key))
    throw new InvalidArgumentError(`unknown model config key '${key}'${didYouMean(key, CONFIG_KEYS)}; keys: ${CONFIG_KEYS.join(', ')}.`)
  let value: unknown = raw
  if (raw === 'true' || raw === 'false') value = raw === 'true'
  else if (raw !== '' && Number.isFinite(Number(raw))) value = Number(raw)
  // a list of numbers (kv_levels): [6,2,1] or 6,2,1
  else if (/^\[?\s*-?[\d.]+(\s*,\s*-?[\d.]+)+\s*\]?$|^\[\s*-?[\d.]+\s*\]$/.test(raw))
    value = raw
      .replace(/[[\]\s]/g, '')
      .split(',')
      .map(Number)
  // a list of lists (kv_route_shares per layer): JSON, [[0.1,0.9,0],[0.5,0.5,0]]
  else if (raw.startsWith('[[')) {
    try {
      value = JSON.parse(raw)
    } catch {
      throw new InvalidArgumentError(`${key}: ${raw} is not a list of lists of numbers; write it as JSON, e.g. [[0.1,0.9,0],[0.5,0.5,0]].`)
    }
  }
  return { ...previous, [key]: value }
}

export const presetOption = () =>
  new Option('--preset <name>', `training and model preset: ${PRESET_NAMES.join(' | ')} (paper = the MoAS paper's protocol on WikiText-2)`).choices(
    PRESET_NAMES,
  )
export const dataOption = () => new Option('--data <name>', 'dataset (default: wikitext-2 for paper, synthetic for smoke)').choices(DATASETS)

/** The protocol flags of train and compare, in the order --help lists them. */
export function addProtocolOptions(cmd: Command): Command {
  return cmd
    .addOption(dataOption())
    .option('--data-dir <dir>', 'folder holding wikitext-2/{train,valid,test}.txt (else MOAS_DATA_DIR, else the cache, else download)')
    .option('--steps <n>', 'number of updates', positiveInt)
    .option('--batch-size <n>', 'sequences per micro-batch', sizeInt)
    .option('--accum <n>', 'micro-batches per update (gradient accumulation)', sizeInt)
    .option('--lr <x>', 'peak learning rate', positiveNumber)
    .addOption(new Option('--schedule <kind>', 'learning-rate schedule').choices(SCHEDULES))
    .option('--warmup <n>', 'cosine: linear warmup updates', nonNegativeInt)
    .option('--min-lr <x>', 'cosine: final learning rate', nonNegativeNumber)
    .option('--decay-steps <n>', 'cosine: update at which the decay ends (default: --steps)', positiveInt)
    .option('--clip <x>', 'clip gradients to this global L2 norm (default: none)', positiveNumber)
    .option('--weight-decay <x>', 'AdamW weight decay on >=2-D tensors', nonNegativeNumber)
    .option('--eval-interval <n>', 'evaluate every n updates', positiveInt)
    .option('--eval-iters <n>', 'random val batches per evaluation', sizeInt)
    .option('--checkpoint-interval <n>', 'save a checkpoint every n updates (0: only at the end)', nonNegativeInt)
    .option('--set <key=value>', 'any model config key, repeatable (e.g. --set dropout=0.2 --set n_kv_head=3)', collectSet)
    .option('--skip-unknown', 'drop characters outside the vocabulary instead of refusing the text')
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default: one per core, or MOAS_THREADS)', threadCount)
    .addOption(deviceOption())
}

/** CLI option name → protocol key. */
const PROTOCOL_FLAGS: Record<string, keyof TrainProtocol> = {
  data: 'data',
  steps: 'steps',
  batchSize: 'batch_size',
  accum: 'accum',
  lr: 'lr',
  schedule: 'schedule',
  warmup: 'warmup',
  minLr: 'min_lr',
  decaySteps: 'decay_steps',
  clip: 'clip',
  weightDecay: 'weight_decay',
  evalInterval: 'eval_interval',
  evalIters: 'eval_iters',
  checkpointInterval: 'checkpoint_interval',
}

/** Protocol values the user typed (only those). */
export function protocolFlags(opts: Record<string, unknown>): Partial<TrainProtocol> {
  const out: Record<string, unknown> = {}
  for (const [flag, key] of Object.entries(PROTOCOL_FLAGS)) if (opts[flag] !== undefined) out[key] = opts[flag]
  return out as Partial<TrainProtocol>
}

/**
 * The `moas train` flags that reproduce `protocol` and the `--set` model keys on top of `preset`: every
 * protocol value that differs from the preset's, each --set key. `moas compare --plan` prints them.
 */
export function trainFlagsFor(preset: TrainPresetName, protocol: TrainProtocol, set: Record<string, unknown> = {}): string[] {
  const base = TRAIN_PRESETS[preset]
  const args = ['--preset', preset]
  for (const [flag, key] of Object.entries(PROTOCOL_FLAGS))
    if (JSON.stringify(protocol[key]) !== JSON.stringify(base[key]) && protocol[key] !== null)
      args.push(`--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, String(protocol[key]))
  const word = (v: unknown) => (Array.isArray(v) ? (v.some(Array.isArray) ? JSON.stringify(v) : v.join(',')) : String(v))
  for (const [key, value] of Object.entries(set)) args.push('--set', `${key}=${word(value)}`)
  return args
}

/** A word for a POSIX shell: as is when safe, else single-quoted. */
export const shellWord = (w: string) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, "'\\''")}'`)

export function presetProtocol(preset: TrainPresetName, flags: Partial<TrainProtocol>): TrainProtocol {
  return { ...TRAIN_PRESETS[preset], ...flags }
}

export function modelFlags(opts: { set?: Record<string, unknown>; attention?: string }): GptConfigInput {
  const set = opts.set ?? {}
  if (set.attention !== undefined && opts.attention !== undefined && set.attention !== opts.attention)
    throw new UsageError(`--set attention=${set.attention} contradicts --attention ${opts.attention}; give the variant once`)
  return { ...set, ...(opts.attention !== undefined ? { attention: opts.attention } : {}) } as GptConfigInput
}

/** Learning-rate flags that contradict each other or the schedule. */
export function checkScheduleFlags(p: TrainProtocol, flags: Partial<TrainProtocol>): void {
  const cosineOnly = (['warmup', 'min_lr', 'decay_steps'] as const).filter((k) => flags[k] !== undefined)
  if (p.schedule === 'constant' && cosineOnly.length)
    throw new UsageError(`${cosineOnly.map((k) => `--${k.replace(/_/g, '-')}`).join(', ')} only apply to --schedule cosine (the schedule is constant)`)
  if (p.schedule === 'cosine' && p.warmup >= (p.decay_steps ?? p.steps))
    throw new UsageError(`--warmup (${p.warmup}) must be smaller than the decay horizon (${p.decay_steps ?? p.steps} updates)`)
  if (p.schedule === 'cosine' && p.min_lr > p.lr)
    throw new UsageError(`--min-lr (${p.min_lr}) is above the peak --lr (${p.lr}); the cosine decays from --lr down to --min-lr, so choose --min-lr <= --lr`)
}

/** A text file's contents, or a one-line error naming the file. */
export function readTextFile(path: string, flag: string): string {
  if (!existsSync(path)) throw new UsageError(`${flag} ${path}: no such file`)
  if (!statSync(path).isFile()) throw new UsageError(`${flag} ${path}: not a file`)
  try {
    return decodeText(readFileSync(path), `${flag} ${path}`)
  } catch (e) {
    throw e instanceof DataError ? new UsageError(e.message) : e
  }
}

/** An output folder flag (--out) that is empty or names an existing file is refused before any work. */
export function checkOutFolder(path: string | undefined, flag = '--out'): void {
  if (path === undefined) return
  if (path.trim() === '') throw new UsageError(`${flag} is empty; give it a folder path`)
  if (existsSync(path) && !statSync(path).isDirectory())
    throw new UsageError(`${flag} ${path} is a file; ${flag} names a folder (created if missing): choose another path`)
}
