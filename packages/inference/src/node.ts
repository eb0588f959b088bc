/**
 * Node-only parts of @moas/inference (the `@moas/inference/node` subpath): model folders on disk. Checkpoints
 * on disk (loadModel) are @moas/gpt/node's; re-exported here.
 */
import { existsSync, readdirSync, statSync } from 'node:fs'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { CHECKPOINT_FILES, type LoadedModel } from '@moas/gpt'
import { loadModel as loadCheckpointModel, removeOnExit, removeStaleTemporaries } from '@moas/gpt/node'
import { InferenceError } from './errors'
import { MODEL_FOLDER_FILES } from './export'
import { type ModelFolder, readModelFolder } from './model-folder'

/** An exported model folder from disk (see readModelFolder for what is checked). */
export async function loadModelFolder(dir: string): Promise<ModelFolder> {
  if (!existsSync(dir)) throw new InferenceError(`no model folder at ${dir}`)
  if (existsSync(join(dir, CHECKPOINT_FILES.complete)) || existsSync(join(dir, CHECKPOINT_FILES.model)))
    throw new InferenceError(
      `${dir} is a checkpoint, not an exported model folder: pass it as --checkpoint, or export it with \`moas export --checkpoint ${dir} --out MODEL_DIR\``,
    )
  return readModelFolder(async (path) => {
    try {
      return await readFile(join(dir, path))
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw e
    }
  }, dir)
}

/**
 * Write a model folder atomically: into a hidden sibling first, renamed into place when complete, so a
 * failed or interrupted export never leaves a half-written folder at `dir`, and the hidden sibling itself is
 * removed on failure, on a stop signal, or (left by a killed export) by the next export beside it. `dir` must not exist or be
 * empty (an export never mixes with other files).
 */
export async function writeModelFolder(dir: string, files: Record<string, Uint8Array | string>): Promise<void> {
  const target = resolve(dir)
  if (existsSync(target)) {
    const entries = readdirSync(target)
    if (entries.length > 0)
      throw new InferenceError(
        `${dir} already holds ${entries.length} file(s) (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); export into a new or empty folder`,
      )
  }
  const prefix = `.${basename(target)}.exporting-`
  removeStaleTemporaries(target, prefix)
  const staging = join(dirname(target), `${prefix}${process.pid}`)
  const forget = removeOnExit(staging)
  await rm(staging, { recursive: true, force: true })
  try {
    for (const [path, data] of Object.entries(files)) {
      await mkdir(dirname(join(staging, path)), { recursive: true })
      await writeFile(join(staging, path), data)
    }
    if (existsSync(target)) await rm(target, { recursive: true }) // the empty folder the user made
    await rename(staging, target)
  } catch (e) {
    await rm(staging, { recursive: true, force: true })
    throw e
  } finally {
    forget()
  }
}

/**
 * A training checkpoint from disk (@moas/gpt/node's loadModel), after refusing what is plainly something
 * else: a file, or an exported model folder (whose loading would only report model.safetensors missing).
 */
export async function loadModel(dir: string): Promise<LoadedModel> {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new InferenceError(`${dir} is a file; a checkpoint is a folder (a run directory of moas train)`)
  if (existsSync(join(dir, MODEL_FOLDER_FILES.onnx)) && !existsSync(join(dir, CHECKPOINT_FILES.model)))
    throw new InferenceError(
      `${dir} is an exported model folder (moas export), not a training checkpoint: generate and analyze take it as --model ${dir}; eval and export need the checkpoint it was exported from`,
    )
  return loadCheckpointModel(dir)
}
