/**
 * Checkpoints: a directory holding
 *   config.json        {"model": {...GptConfig}, ...extra top-level keys (e.g. "training")}
 *   model.safetensors  float32, checkpoint tensor names (docs/variants.md), tied head stored once
 *   tokenizer.json     the tokenizer as JSON, e.g. {"type": "char", "vocab": [...]}
 *   COMPLETE           empty marker, written last
 *   ...extra files     whatever the caller adds (optimizer state, an ONNX export)
 *
 * Writes are atomic: the new checkpoint is written completely into the sibling DIR.next (COMPLETE last,
 * every file fsynced), then DIR → DIR.prev, DIR.next → DIR, DIR.prev removed. After a crash at any point
 * one complete checkpoint survives: loadCheckpoint reads DIR.next if it is complete (the newest), else
 * DIR, else DIR.prev, without touching the disk; the next saveCheckpoint finishes or undoes the swap.
 */
import { existsSync } from 'node:fs'
import { mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { ConfigError, type GptConfig, type GptConfigInput, resolveConfig } from './config'
import { paramShapes } from './params'
import { SafetensorsError, type SafeTensor, readSafetensors, writeSafetensors } from './safetensors'

export class CheckpointError extends Error {
  override name = 'CheckpointError'
}

export const CHECKPOINT_FILES = { config: 'config.json', model: 'model.safetensors', tokenizer: 'tokenizer.json', complete: 'COMPLETE' } as const
const RESERVED = new Set<string>(Object.values(CHECKPOINT_FILES))

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

const staging = (dir: string) => `${dir}.next`
const previous = (dir: string) => `${dir}.prev`

// ---------------------------------------------------------------- save

export async function saveCheckpoint(dir: string, opts: SaveCheckpointOptions): Promise<void> {
  const config = checkConfig(opts.config, 'saveCheckpoint')
  const tensors = checkParams(config, toMap(opts.params), 'saveCheckpoint')
  if (opts.tokenizer === undefined) throw new CheckpointError('saveCheckpoint: a tokenizer is required (e.g. {"type": "char", "vocab": [...]}); a checkpoint must be usable on its own')
  if (opts.extra && 'model' in opts.extra) throw new CheckpointError('saveCheckpoint: extra config keys cannot include "model" (that key holds the model config)')
  for (const name of Object.keys(opts.extraFiles ?? {})) checkExtraName(name)

  await recoverInterruptedSave(dir)
  const next = staging(dir)
  await rm(next, { recursive: true, force: true })
  await mkdir(next, { recursive: true })
  await writeDurably(join(next, CHECKPOINT_FILES.config), `${JSON.stringify({ model: config, ...opts.extra }, null, 2)}\n`)
  await writeDurably(join(next, CHECKPOINT_FILES.tokenizer), JSON.stringify(opts.tokenizer))
  await writeDurably(join(next, CHECKPOINT_FILES.model), writeSafetensors(tensors, { format: 'pt' }))
  for (const [name, data] of Object.entries(opts.extraFiles ?? {})) {
    await mkdir(dirname(join(next, name)), { recursive: true })
    await writeDurably(join(next, name), data)
  }
  await writeDurably(join(next, CHECKPOINT_FILES.complete), '')
  await syncDir(next)
  await swapIn(dir)
}

/** DIR.next (complete) becomes DIR; the old DIR is kept as DIR.prev until the swap is done. */
async function swapIn(dir: string): Promise<void> {
  const prev = previous(dir)
  if (existsSync(dir)) {
    await rm(prev, { recursive: true, force: true })
    await rename(dir, prev)
  }
  await rename(staging(dir), dir)
  await syncDir(dirname(dir))
  await rm(prev, { recursive: true, force: true })
}

/** Finish a swap whose staging directory is complete, or drop an incomplete one and restore DIR. */
async function recoverInterruptedSave(dir: string): Promise<void> {
  const next = staging(dir)
  if (existsSync(join(next, CHECKPOINT_FILES.complete))) return swapIn(dir)
  await rm(next, { recursive: true, force: true })
  if (!existsSync(dir) && existsSync(previous(dir))) await rename(previous(dir), dir)
  else await rm(previous(dir), { recursive: true, force: true })
}

async function writeDurably(path: string, data: Uint8Array | string): Promise<void> {
  const f = await open(path, 'w')
  try {
    await f.writeFile(data)
    await f.sync()
  } finally {
    await f.close()
  }
}

async function syncDir(path: string): Promise<void> {
  const d = await open(path, 'r')
  try {
    await d.sync()
  } finally {
    await d.close()
  }
}

function checkExtraName(name: string): void {
  const ok = /^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(name) && !name.split('/').some((s) => s === '.' || s === '..')
  if (!ok) throw new CheckpointError(`saveCheckpoint: extra file name '${name}' must be a relative path of letters, digits, '.', '_', '-' (no '..')`)
  if (RESERVED.has(name)) throw new CheckpointError(`saveCheckpoint: extra file '${name}' would overwrite a checkpoint file (${[...RESERVED].join(', ')})`)
}

// ---------------------------------------------------------------- load

export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  const from = pickDirectory(dir)
  const file = (name: string) => join(from, name)
  const meta = await readJson(file(CHECKPOINT_FILES.config))
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta) || !('model' in meta))
    throw new CheckpointError(`${file(CHECKPOINT_FILES.config)}: expected {"model": {...model config}, ...}; the model config is missing`)
  const { model, ...extra } = meta as Record<string, unknown>
  const config = checkConfig(model as GptConfigInput, file(CHECKPOINT_FILES.config))

  const modelPath = file(CHECKPOINT_FILES.model)
  if (!existsSync(modelPath)) throw new CheckpointError(`${modelPath}: missing; a checkpoint needs the weights in model.safetensors`)
  let tensors: Map<string, SafeTensor>
  try {
    tensors = readSafetensors(await readFile(modelPath), modelPath).tensors
  } catch (e) {
    if (e instanceof SafetensorsError) throw new CheckpointError(e.message, { cause: e })
    throw e
  }
  const wrongDtype = [...tensors].filter(([, t]) => t.dtype !== 'float32').map(([n, t]) => `'${n}' is ${t.dtype}`)
  if (wrongDtype.length) throw new CheckpointError(`${modelPath}: wrong dtype: ${wrongDtype.join(', ')}; moas checkpoints store float32 (convert with tensor.float() in PyTorch)`)
  const params = checkParams(config, new Map([...tensors].map(([n, t]) => [n, t.data as Float32Array])), modelPath, new Map([...tensors].map(([n, t]) => [n, t.shape])))

  const tokenizer = await readJson(file(CHECKPOINT_FILES.tokenizer))
  const files = (await listFiles(from)).filter((f) => !RESERVED.has(f))
  return { dir: from, config, params: new Map([...params].map(([n, t]) => [n, t.data as Float32Array])), tokenizer, extra, files }
}

/** DIR.next when complete (a save crashed after finishing it), else DIR, else DIR.prev. */
function pickDirectory(dir: string): string {
  if (existsSync(join(staging(dir), CHECKPOINT_FILES.complete))) return staging(dir)
  if (existsSync(dir)) return dir
  if (existsSync(previous(dir))) return previous(dir)
  throw new CheckpointError(`no checkpoint at ${dir} (and no ${staging(dir)} or ${previous(dir)} left by an interrupted save)`)
}

async function readJson(path: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new CheckpointError(`${path}: missing; a checkpoint holds ${Object.values(CHECKPOINT_FILES).slice(0, 3).join(', ')}`)
    throw e
  }
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON (${(e as Error).message})`)
  }
}

async function listFiles(root: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(relative(root, join(e.parentPath ?? (e as any).path, e.name)))
  }
  return out.sort()
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
function checkParams(config: GptConfig, values: Map<string, Float32Array | Float64Array>, where: string, shapes?: Map<string, number[]>): Map<string, SafeTensor> {
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
    throw new CheckpointError(`${where}: tensors do not match the config (attention '${c.attention}', n_layer ${c.n_layer}, n_embd ${c.n_embd}, n_head ${c.n_head}${c.n_kv_head ? `, n_kv_head ${c.n_kv_head}` : ''}, bias ${c.bias}): ${problems.join('; ')}`)
  }
  const out = new Map<string, SafeTensor>()
  for (const [name, shape] of expected) {
    const v = values.get(name)!
    out.set(name, { dtype: 'float32', shape, data: v instanceof Float32Array ? v : Float32Array.from(v) })
  }
  return out
}

const list = (xs: string[]) => (xs.length > 6 ? `${xs.slice(0, 6).join(', ')} and ${xs.length - 6} more` : xs.join(', '))

