/**
 * Training presets, the run config (everything that determines a run's trajectory, saved with every
 * checkpoint so a resume can be checked against it) and dataset loading.
 */
import { CharTokenizer, type GptConfig, type GptConfigInput, type OnUnknown, resolveConfig, TokenizerError } from '@moas/gpt'
import { DataError } from './data/errors'
import { paperSplit } from './data/split'
import { syntheticCorpus } from './data/synthetic'
import type { LrSchedule } from './schedule'

export const DATASETS = ['wikitext-2', 'synthetic'] as const
export type DatasetName = (typeof DATASETS)[number]
export const PRESET_NAMES = ['paper', 'smoke'] as const
export type TrainPresetName = (typeof PRESET_NAMES)[number]

/** The optimization and evaluation protocol of a run (the model config lives in `model`). */
export interface TrainProtocol {
  data: DatasetName
  steps: number
  batch_size: number
  /** Micro-batches per update (gradient accumulation); the effective batch is batch_size · accum. */
  accum: number
  lr: number
  schedule: 'constant' | 'cosine'
  /** Cosine only: warmup updates, the update at which the decay ends, and the final learning rate. */
  warmup: number
  decay_steps: number | null
  min_lr: number
  beta1: number
  beta2: number
  eps: number
  weight_decay: number
  /** Global gradient-norm clipping threshold, or null for none. */
  clip: number | null
  eval_interval: number
  eval_iters: number
  checkpoint_interval: number
}

/**
 * `paper`: the MoAS paper's protocol exactly (seed-facts.md): WikiText-2 character level, batch 12,
 * 500 updates, AdamW lr 3e-4 constant, betas 0.9/0.99, eps 1e-8, weight decay 0.1, no clipping, eval every
 * 50 updates on 20 random val batches. `smoke`: a tiny model and a few dozen updates on the embedded
 * synthetic corpus, for CI and the quickstart.
 */
export const TRAIN_PRESETS: Readonly<Record<TrainPresetName, Readonly<TrainProtocol>>> = {
  paper: {
    data: 'wikitext-2',
    steps: 500,
    batch_size: 12,
    accum: 1,
    lr: 3e-4,
    schedule: 'constant',
    warmup: 0,
    decay_steps: null,
    min_lr: 3e-5,
    beta1: 0.9,
    beta2: 0.99,
    eps: 1e-8,
    weight_decay: 0.1,
    clip: null,
    eval_interval: 50,
    eval_iters: 20,
    checkpoint_interval: 100,
  },
  smoke: {
    data: 'synthetic',
    steps: 60,
    batch_size: 16,
    accum: 1,
    lr: 3e-3,
    schedule: 'constant',
    warmup: 0,
    decay_steps: null,
    min_lr: 3e-4,
    beta1: 0.9,
    beta2: 0.99,
    eps: 1e-8,
    weight_decay: 0.1,
    clip: null,
    eval_interval: 10,
    eval_iters: 4,
    checkpoint_interval: 30,
  },
}

/** Everything that determines a run's trajectory. Saved in trainer_state.json; a resume must match it. */
export type RunConfig = Omit<TrainProtocol, 'data' | 'steps' | 'checkpoint_interval'> & {
  model: GptConfig
  data: { name: string; train_tokens: number; val_tokens: number }
  seed: number
}

/** Keys a resume may change: how far to train and how often to save do not change the trajectory. */
export const RESUMABLE_CHANGES = ['steps', 'checkpoint_interval'] as const

export function lrSchedule(run: Pick<RunConfig, 'lr' | 'schedule' | 'warmup' | 'decay_steps' | 'min_lr'>, steps: number): LrSchedule {
  if (run.schedule === 'constant') return { kind: 'constant', lr: run.lr }
  return { kind: 'cosine', lr: run.lr, warmup: run.warmup, decaySteps: run.decay_steps ?? steps, minLr: run.min_lr }
}

/**
 * Differences between two run configs as readable lines (`model.dropout: 0.1 in the checkpoint, 0 now`),
 * comparing nested keys; empty when they match.
 */
export function diffRunConfigs(saved: unknown, now: unknown, prefix = ''): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
  if (isObj(saved) && isObj(now)) {
    const keys = [...new Set([...Object.keys(saved), ...Object.keys(now)])].sort()
    return keys.flatMap((k) => diffRunConfigs(saved[k], now[k], prefix ? `${prefix}.${k}` : k))
  }
  if (JSON.stringify(saved) === JSON.stringify(now)) return []
  const show = (v: unknown) => (v === undefined ? '(unset)' : JSON.stringify(v))
  return [`${prefix}: ${show(saved)} in the checkpoint, ${show(now)} now`]
}

/** Derived seeds: one integer per purpose, so the init, batches, eval batches and dropout are independent streams. */
export function deriveSeed(seed: number, purpose: 'init' | 'batches' | 'eval' | 'noise' | 'kv-route' | 'kv-route-eval', step = 0): number {
  let h = (seed >>> 0) ^ 0x9e3779b9
  for (const c of `${purpose}:${step}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b) >>> 0
  return (h ^ (h >>> 13)) >>> 0
}

export interface Dataset {
  name: DatasetName
  tokenizer: CharTokenizer
  train: Int32Array
  val: Int32Array
  /** Where the text came from, for logs and result tables. */
  source: string
}

export interface LoadDatasetOptions {
  /** --data-dir (WikiText-2). */
  dataDir?: string
  env?: Record<string, string | undefined>
  /** Use this tokenizer (a resumed run's) instead of building one from the text. */
  tokenizer?: CharTokenizer
  /** Synthetic corpus length in characters (default 1,000,000). */
  syntheticChars?: number
  /** With a given tokenizer: characters outside its vocabulary are an error (default) or skipped. */
  onUnknown?: OnUnknown
}

/**
 * A dataset from its text with the paper's split: first 90% of the characters train, last 10% val. The
 * vocabulary is the sorted character set of the whole text (the paper's `sorted(set(text))`, 283 for
 * WikiText-2), unless a tokenizer is given.
 */
export function datasetFromText(name: DatasetName, text: string, source: string, opts: Pick<LoadDatasetOptions, 'tokenizer' | 'onUnknown'> = {}): Dataset {
  const tokenizer = opts.tokenizer ?? CharTokenizer.fromText(text)
  const { train, val } = paperSplit(text)
  const enc = { onUnknown: opts.onUnknown }
  try {
    return { name, tokenizer, train: tokenizer.encode(train, enc), val: tokenizer.encode(val, enc), source }
  } catch (e) {
    // A given vocabulary is a run's, built from its data: characters outside it mean other data, not stray
    // characters to skip.
    if (!(e instanceof TokenizerError) || !opts.tokenizer) throw e
    throw new DataError(
      `${source}: ${e.message.split('. Pass')[0]}; the run's vocabulary was built from its own data, so this is not the data the run was trained on (edited or another copy): resume with that data (--skip-unknown would train on it with those characters dropped)`,
    )
  }
}

/** The embedded synthetic corpus as a dataset (browser-safe: no file is read). */
export function syntheticDataset(opts: Pick<LoadDatasetOptions, 'tokenizer' | 'onUnknown' | 'syntheticChars'> = {}): Dataset {
  const text = syntheticCorpus({ seed: 0, chars: opts.syntheticChars ?? 1_000_000 })
  return datasetFromText('synthetic', text, `synthetic corpus (seed 0, ${text.length} chars)`, opts)
}

/** The model config of a preset for a dataset's vocabulary, with user overrides (`--set`, `--attention`). */
export function modelConfig(preset: TrainPresetName, vocabSize: number, overrides: GptConfigInput = {}): GptConfig {
  return resolveConfig({ ...overrides, vocab_size: overrides.vocab_size ?? vocabSize }, preset)
}

/** The run config of a protocol, model, dataset and seed. */
export function makeRunConfig(protocol: TrainProtocol, model: GptConfig, data: Dataset, seed: number): RunConfig {
  const { steps: _s, checkpoint_interval: _c, data: _d, ...rest } = protocol
  return {
    model,
    data: { name: data.name, train_tokens: data.train.length, val_tokens: data.val.length },
    seed,
    ...rest,
    // Cosine settings mean nothing for a constant rate: normalize them so they never make a resume differ.
    // The decay horizon is pinned to the run length at the start, so a resume cannot shift it.
    ...(protocol.schedule === 'cosine' ? { decay_steps: protocol.decay_steps ?? protocol.steps } : { warmup: 0, decay_steps: null, min_lr: protocol.lr }),
  }
}

/** The protocol a saved run was trained with (for resuming it without repeating every flag). */
export function protocolOfRun(run: RunConfig, steps: number, checkpointInterval: number): TrainProtocol {
  const { model: _m, data, seed: _s, ...rest } = run
  return { ...rest, data: data.name as DatasetName, steps, checkpoint_interval: checkpointInterval }
}
