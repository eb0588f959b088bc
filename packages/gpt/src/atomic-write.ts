/**
 * The one atomic write of moas, and the temporaries it and the other staged writes (checkpoint swaps,
 * exported folders) leave beside their target. Node only.
 *
 * writeFileAtomic: data goes to a temporary beside the target (named by this process), is flushed to disk,
 * and is renamed over the target, so a reader, a kill or a full disk sees the old file or the new one,
 * never a part; the temporary is removed if anything fails.
 */
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  removeStaleTemporaries(path, `${basename(path)}.tmp-`)
  const tmp = `${path}.tmp-${process.pid}`
  const forget = removeOnExit(tmp)
  try {
    const fd = openSync(tmp, 'w')
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
  } catch (e) {
    rmSync(tmp, { force: true })
    throw e
  } finally {
    forget()
  }
  try {
    const dir = openSync(dirname(path), 'r')
    try {
      fsyncSync(dir)
    } finally {
      closeSync(dir)
    }
  } catch {
    // some file systems refuse to fsync a directory; the rename itself is atomic
  }
}

/** Whether a process of this machine runs with that pid (EPERM: it exists, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const pendingTemporaries = new Set<string>()

/**
 * Remove `path` (file or folder) if this process exits before the returned function is called: a stop
 * signal in a command that quits at once (process.exit) must not leave a half-written temporary behind.
 */
export function removeOnExit(path: string): () => void {
  if (pendingTemporaries.size === 0) process.once('exit', removePending)
  pendingTemporaries.add(path)
  return () => {
    pendingTemporaries.delete(path)
    if (pendingTemporaries.size === 0) process.off('exit', removePending)
  }
}

function removePending(): void {
  for (const p of pendingTemporaries) rmSync(p, { recursive: true, force: true })
}

/**
 * Remove the temporaries beside `target` that a killed process left: entries named `${prefix}${pid}` whose
 * process no longer runs on this machine (a kill -9 or a power cut runs no exit handler). Another live
 * writer's temporary is left alone.
 */
export function removeStaleTemporaries(target: string, prefix: string): void {
  let names: string[]
  try {
    names = readdirSync(dirname(target))
  } catch {
    return // the folder does not exist yet: nothing to clean
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue
    const pid = Number(name.slice(prefix.length))
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid)) rmSync(join(dirname(target), name), { recursive: true, force: true })
  }
}
