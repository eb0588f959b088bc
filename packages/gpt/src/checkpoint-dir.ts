/**
 * Checkpoint directories (Node only; the format itself is checkpoint.ts):
 *
 * Writes are atomic: the new checkpoint is written completely into the sibling DIR.next (COMPLETE last,
 * every file fsynced), then DIR → DIR.prev, DIR.next → DIR, DIR.prev removed. After a crash at any point
 * one complete checkpoint survives: loadCheckpoint reads DIR.next if it is complete (the newest), else
 * DIR, else DIR.prev, without touching the disk; the next saveCheckpoint finishes or undoes the swap.
 */
import { createHash } from 'node:crypto'
import { existsSync, statSync } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { removeOnExit } from './atomic-write'
import {
  CHECKPOINT_FILES,
  type Checkpoint,
  CheckpointError,
  decodeCheckpoint,
  encodeCheckpoint,
  RESERVED_CHECKPOINT_FILES,
  type SaveCheckpointOptions,
} from './checkpoint'

const staging = (dir: string) => `${dir}.next`
const previous = (dir: string) => `${dir}.prev`

// ---------------------------------------------------------------- save

export async function saveCheckpoint(dir: string, opts: SaveCheckpointOptions): Promise<void> {
  const files = encodeCheckpoint(opts)
  await recoverInterruptedSave(dir)
  const next = staging(dir)
  await rm(next, { recursive: true, force: true })
  // Until COMPLETE is in place DIR.next holds nothing to keep: a failed write (a full disk) or an exit
  // removes it, so it never keeps the disk full. From the marker's rename on it is the newest checkpoint.
  const forget = removeOnExit(next)
  const marker = join(next, CHECKPOINT_FILES.complete)
  try {
    await mkdir(next, { recursive: true })
    for (const [name, data] of Object.entries(files)) {
      await mkdir(dirname(join(next, name)), { recursive: true })
      await writeDurably(join(next, name), data)
    }
    // COMPLETE, written last, is the manifest: the sha256 of every file, verified by loadCheckpoint, so a
    // byte changed after the save (disk corruption, a stray edit) is an error and not silently other weights.
    const mutable = new Set(opts.mutableFiles ?? [])
    const sums = Object.fromEntries(
      Object.entries(files)
        .filter(([name]) => !mutable.has(name))
        .map(([name, data]) => [name, sha256(data)]),
    )
    // Written beside and renamed into place: COMPLETE exists only once it is whole (a kill -9 while it is
    // being written leaves DIR.next incomplete, never a half-written marker).
    await writeDurably(`${marker}.tmp`, `${JSON.stringify({ format: 'moas-checkpoint', version: 1, sha256: sums })}\n`)
  } catch (e) {
    await rm(next, { recursive: true, force: true })
    throw e
  } finally {
    forget()
  }
  await rename(`${marker}.tmp`, marker)
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

// ---------------------------------------------------------------- load

/**
 * A checkpoint from disk. A reader racing a save (eval of a run being trained) may read files of two
 * moments while the save swaps DIR.next in: the folder read is then another directory (its inode changed),
 * and the read is repeated rather than reported as corruption.
 */
export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  for (let attempt = 0; ; attempt++) {
    const from = pickDirectory(dir)
    const before = folderIdentity(from)
    try {
      const checkpoint = await readCheckpointFrom(from)
      if (folderIdentity(from) === before || attempt >= 3) return checkpoint
    } catch (e) {
      if (folderIdentity(from) === before || attempt >= 3) throw e
    }
  }
}

/** The directory's identity (device and inode); a swap renames another directory into the path. */
function folderIdentity(path: string): string {
  try {
    const s = statSync(path)
    return `${s.dev}:${s.ino}`
  } catch {
    return 'gone'
  }
}

async function readCheckpointFrom(from: string): Promise<Checkpoint> {
  const file = (name: string) => join(from, name)
  await verifyManifest(from)
  const config = await readText(file(CHECKPOINT_FILES.config))
  const modelPath = file(CHECKPOINT_FILES.model)
  if (!existsSync(modelPath)) throw new CheckpointError(`${modelPath}: missing; a checkpoint needs the weights in model.safetensors`)
  const model = await readFile(modelPath)
  const tokenizer = await readText(file(CHECKPOINT_FILES.tokenizer))
  const decoded = decodeCheckpoint({ config, model, tokenizer, where: from })
  const files = (await listFiles(from)).filter((f) => !RESERVED_CHECKPOINT_FILES.has(f))
  return { dir: from, ...decoded, files }
}

/** DIR.next when complete (a save crashed after finishing it), else DIR, else DIR.prev. */
function pickDirectory(dir: string): string {
  if (existsSync(join(staging(dir), CHECKPOINT_FILES.complete))) return staging(dir)
  if (existsSync(dir)) return dir
  if (existsSync(previous(dir))) return previous(dir)
  throw new CheckpointError(`no checkpoint at ${dir} (and no ${staging(dir)} or ${previous(dir)} left by an interrupted save)`)
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      throw new CheckpointError(`${path}: missing; a checkpoint holds ${Object.values(CHECKPOINT_FILES).slice(0, 3).join(', ')}`)
    throw e
  }
}

async function listFiles(root: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(root, { withFileTypes: true, recursive: true })) {
    // Node 20.0-20.11 name the folder `path`, later versions `parentPath`
    if (e.isFile()) out.push(relative(root, join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)))
  }
  return out.sort()
}

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex')

/**
 * Check every file against the COMPLETE manifest (an empty COMPLETE is a checkpoint written before
 * manifests existed: nothing to verify). Names the file that changed and what to do.
 */
async function verifyManifest(dir: string): Promise<void> {
  const path = join(dir, CHECKPOINT_FILES.complete)
  const text = existsSync(path) ? await readFile(path, 'utf8') : null
  if (text === null || text.trim() === '') {
    // Only a version-1 checkpoint or a hand-made model directory may lack a manifest; one saved with a
    // manifest that lost it (deleted, emptied) is not trusted: deleting COMPLETE must not switch checks off.
    let version: unknown
    try {
      version = JSON.parse(await readFile(join(dir, CHECKPOINT_FILES.config), 'utf8'))?.checkpoint_version
    } catch {
      return // config.json itself is unreadable: decodeCheckpoint names that
    }
    if (version !== undefined)
      throw new CheckpointError(
        `${path}: ${text === null ? 'missing' : 'empty'}, but the checkpoint was saved with a checksum manifest there (version ${version}); its files cannot be verified, so it is not trusted: use an earlier copy`,
      )
    return
  }
  let manifest: { format?: unknown; sha256?: Record<string, unknown> }
  try {
    manifest = JSON.parse(text)
  } catch {
    throw new CheckpointError(`${path}: the checkpoint's manifest is corrupt (not JSON); the checkpoint cannot be trusted: use an earlier copy`)
  }
  if (manifest?.format !== 'moas-checkpoint' || typeof manifest.sha256 !== 'object' || manifest.sha256 === null)
    throw new CheckpointError(`${path}: not a moas checkpoint manifest; the checkpoint cannot be trusted: use an earlier copy`)
  for (const [name, sum] of Object.entries(manifest.sha256)) {
    const f = join(dir, name)
    if (!existsSync(f)) throw new CheckpointError(`${f}: missing, though the checkpoint was saved with it; use an earlier copy`)
    if (sha256(await readFile(f)) !== sum)
      throw new CheckpointError(
        `${f}: changed since the checkpoint was saved (its sha256 no longer matches the manifest in ${CHECKPOINT_FILES.complete}): corrupted on disk or edited; use an earlier copy`,
      )
  }
}
