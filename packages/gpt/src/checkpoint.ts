/**
 * The checkpoint format, as bytes (browser-safe; directory I/O is in `@moas/gpt/node`):
 *   config.json        {"model": {...GptConfig}, ...extra top-level keys (e.g. "training")}
 *   model.safetensors  float32, checkpoint tensor names (docs/variants.md), tied head stored once
 *   tokenizer.json     the tokenizer as JSON, e.g. {"type": "char", "vocab": [...]}
 *   COMPLETE           empty marker, written last
 *   ...extra files     whatever the caller adds (optimizer state, an ONNX export)
 * encodeCheckpoint / decodeCheckpoint turn a model into those files and back, validating everything:
 * the config, every tensor's name, shape and dtype, and that every weight is finite.
 */
import { ConfigError, type GptConfig, type GptConfigInput, resolveConfig } from './config'
import { paramShapes } from './params'
import { readSafetensors, type SafeTensor, SafetensorsError, writeSafetensors } from './safetensors'

export class CheckpointError extends Error {
  override name = 'CheckpointError'
}

export const CHECKPOINT_FILES = { config: 'config.json', model: 'model.safetensors', tokenizer: 'tokenizer.json', complete: 'COMPLETE' } as const
export const RESERVED_CHECKPOINT_FILES: ReadonlySet<string> = new Set<string>(Object.values(CHECKPOINT_FILES))

export type ParamValues = ReadonlyMap<string, Float32Array | Float64Array> | Readonly<Record<string, Float32Array | Float64Array>>

export interface SaveCheckpointOptions {
  /** The model config (resolved and validated again here). */
  config: GptConfig | GptConfigInput
  /** Every parameter by checkpoint name; float64 values are stored as float32. */
  params: ParamValues
  /** Any JSON value, written to tokenizer.json as is. */
  tokenizer: unknown
  /** More top-level keys of config.json beside "model", e.g. {training: {...}}. */
  extra?: Record<string, unknown>
  /** More files, by relative path inside the checkpoint. */
  extraFiles?: Record<string, Uint8Array | string>
  /**
   * Extra files that may change after the save (e.g. a log appended to between saves): left out of the
   * checksum manifest. Every other file is verified on load.
   */
  mutableFiles?: readonly string[]
}

export interface Checkpoint {
  /** The directory actually read: DIR, or DIR.next / DIR.prev when recovering from a crash. */
  dir: string
  config: GptConfig
  params: Map<string, Float32Array>
  tokenizer: unknown
  /** config.json's top-level keys other than "model". */
  extra: Record<string, unknown>
  /** Relative paths of the caller's extra files. */
  files: string[]
}

/**
 * Version 2 checkpoints (config.json's "checkpoint_version") carry a checksum manifest in COMPLETE;
 * version 1 (no key) had an empty COMPLETE.
 */
export const CHECKPOINT_VERSION = 2

/** A checkpoint's files as bytes or text, by relative path (the CHECKPOINT_FILES, then the extra files). */
export type CheckpointFiles = Record<string, Uint8Array | string>

/** The files of a checkpoint (without COMPLETE, which the writer adds last). Validates config and tensors. */
export function encodeCheckpoint(opts: SaveCheckpointOptions, where = 'saveCheckpoint'): CheckpointFiles {
  const config = checkConfig(opts.config, where)
  const tensors = checkParams(config, toMap(opts.params), where)
  if (opts.tokenizer === undefined)
    throw new CheckpointError(`${where}: a tokenizer is required (e.g. {"type": "char", "vocab": [...]}); a checkpoint must be usable on its own`)
  if (opts.extra && ('model' in opts.extra || 'checkpoint_version' in opts.extra))
    throw new CheckpointError(`${where}: extra config keys cannot include "model" or "checkpoint_version" (moas's own keys)`)
  for (const name of Object.keys(opts.extraFiles ?? {})) checkExtraName(name, where)
  return {
    [CHECKPOINT_FILES.config]: `${JSON.stringify({ model: config, checkpoint_version: CHECKPOINT_VERSION, ...opts.extra }, null, 2)}\n`,
    [CHECKPOINT_FILES.tokenizer]: JSON.stringify(opts.tokenizer),
    [CHECKPOINT_FILES.model]: writeSafetensors(tensors, { format: 'pt' }),
    ...opts.extraFiles,
  }
}

function checkExtraName(name: string, where: string): void {
  const ok = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(name) && !name.split('/').some((s) => s === '.' || s === '..')
  if (!ok) throw new CheckpointError(`${where}: extra file name '${name}' must be a relative path of letters, digits, '.', '_', '-' (no '..')`)
  if (RESERVED_CHECKPOINT_FILES.has(name))
    throw new CheckpointError(`${where}: extra file '${name}' would overwrite a checkpoint file (${[...RESERVED_CHECKPOINT_FILES].join(', ')})`)
}

/** What decodeCheckpoint reads: config.json and tokenizer.json as text, model.safetensors as bytes. */
export interface CheckpointSource {
  config: string
  model: Uint8Array
  tokenizer: string
  /** For messages: the directory or URL the files come from. */
  where: string
}

/** The model of a checkpoint's files; every problem is a CheckpointError naming the file. */
export function decodeCheckpoint(src: CheckpointSource): Omit<Checkpoint, 'dir' | 'files'> {
  const file = (name: string) => `${src.where}/${name}`
  const meta = parseJson(src.config, file(CHECKPOINT_FILES.config))
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta) || !('model' in meta))
    throw new CheckpointError(`${file(CHECKPOINT_FILES.config)}: expected {"model": {...model config}, ...}; the model config is missing`)
  const { model, checkpoint_version: _version, ...extra } = meta as Record<string, unknown>
  const config = checkConfig(model as GptConfigInput, file(CHECKPOINT_FILES.config))
  const modelPath = file(CHECKPOINT_FILES.model)
  let tensors: Map<string, SafeTensor>
  try {
    tensors = readSafetensors(src.model, modelPath).tensors
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError(e.message, { cause: e })
    throw e
  }
  const wrongDtype = [...tensors].filter(([, t]) => t.dtype !== 'float32').map(([n, t]) => `'${n}' is ${t.dtype}`)
  if (wrongDtype.length)
    throw new CheckpointError(`${modelPath}: wrong dtype: ${wrongDtype.join(', ')}; moas checkpoints store float32 (convert with tensor.float() in PyTorch)`)
  const params = checkParams(
    config,
    new Map([...tensors].map(([n, t]) => [n, t.data as Float32Array])),
    modelPath,
    new Map([...tensors].map(([n, t]) => [n, t.shape])),
  )
  checkFinite(params, modelPath)
  const tokenizer = parseJson(src.tokenizer, file(CHECKPOINT_FILES.tokenizer))
  return { config, params: new Map([...params].map(([n, t]) => [n, t.data as Float32Array])), tokenizer, extra }
}

/** Refuse weights holding NaN or ±Infinity, naming the first tensor and element: they would give garbage, not an error. */
function checkFinite(params: Map<string, SafeTensor>, where: string): void {
  for (const [name, t] of params) {
    const data = t.data as Float32Array
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        const bad = data.reduce((n, v) => n + (Number.isFinite(v) ? 0 : 1), 0)
        throw new CheckpointError(
          `${where}: tensor '${name}' holds ${bad} non-finite value(s) (first at element ${i}: ${data[i]}); the weights are corrupt or the run diverged: use an earlier checkpoint`,
        )
      }
    }
  }
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON (${(e as Error).message})`)
  }
}

// ---------------------------------------------------------------- validation shared by save and load

function checkConfig(input: GptConfig | GptConfigInput, where: string): GptConfig {
  try {
    return resolveConfig(input)
  } catch (e) {
    if (e instanceof ConfigError) throw new CheckpointError(`${where}: invalid model config: ${e.message}`, { cause: e })
    throw e
  }
}

function toMap(params: ParamValues): Map<string, Float32Array | Float64Array> {
  return params instanceof Map ? new Map(params) : new Map(Object.entries(params))
}

/**
 * The tensors of `config`'s model, float32, in graph order; reports every missing, extra and misshaped
 * tensor at once. `shapes` are the stored shapes (load); without them, element counts are compared (save).
 */
function checkParams(
  config: GptConfig,
  values: Map<string, Float32Array | Float64Array>,
  where: string,
  shapes?: Map<string, number[]>,
): Map<string, SafeTensor> {
  const expected = paramShapes(config)
  const missing = [...expected.keys()].filter((n) => !values.has(n))
  const extra = [...values.keys()].filter((n) => !expected.has(n))
  const misshaped: string[] = []
  for (const [name, shape] of expected) {
    const v = values.get(name)
    if (!v) continue
    const n = shape.reduce((a, b) => a * b, 1)
    const got = shapes?.get(name)
    if (got ? got.join(',') !== shape.join(',') : v.length !== n)
      misshaped.push(`'${name}' is ${got ? `[${got.join(',')}]` : `${v.length} values`}, expected [${shape.join(',')}]${got ? '' : ` (${n} values)`}`)
  }
  if (missing.length || extra.length || misshaped.length) {
    const problems: string[] = []
    if (missing.length) problems.push(`missing ${missing.length} tensor${missing.length > 1 ? 's' : ''}: ${list(missing)}`)
    if (extra.length) {
      const tied = extra.includes('lm_head.weight') ? ' (the output head is tied to transformer.wte.weight and not stored)' : ''
      problems.push(`unexpected ${extra.length} tensor${extra.length > 1 ? 's' : ''}: ${list(extra)}${tied}`)
    }
    if (misshaped.length) problems.push(`wrong shape: ${list(misshaped)}`)
    const c = config
    throw new CheckpointError(
      `${where}: tensors do not match the config (attention '${c.attention}', n_layer ${c.n_layer}, n_embd ${c.n_embd}, n_head ${c.n_head}${c.n_kv_head ? `, n_kv_head ${c.n_kv_head}` : ''}, bias ${c.bias}): ${problems.join('; ')}`,
    )
  }
  const out = new Map<string, SafeTensor>()
  for (const [name, shape] of expected) {
    const v = values.get(name)!
    out.set(name, { dtype: 'float32', shape, data: v instanceof Float32Array ? v : Float32Array.from(v) })
  }
  return out
}

const list = (xs: string[]) => (xs.length > 6 ? `${xs.slice(0, 6).join(', ')} and ${xs.length - 6} more` : xs.join(', '))
