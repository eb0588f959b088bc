/**
 * One writer per run directory (Node only). A lock file beside the directory, `DIR.lock` (beside, not
 * inside: checkpoints replace DIR by renaming), holds the writer's pid, host and start time. It is created
 * atomically (written to a unique temporary file, then hard-linked into place, which fails if the lock
 * exists), so two processes started at the same instant cannot both take it. A lock whose process is gone
 * (killed with -9, a crash) is recognised as stale, reported and taken over.
 */
import { linkSync, mkdirSync, readFileSync, realpathSync, unlinkSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { processAlive } from '@moas/gpt/node'
import { TrainError } from './errors'

interface LockInfo {
  pid: number
  host: string
  started: string
  command: string
}

export const lockPath = (dir: string) => `${dir}.lock`

/**
 * The directory a path really names, links followed (the part that exists resolved, the rest appended).
 * Locks, checkpoint swaps and resumes all use it: a run reached through a symlink and through its target is
 * one run with one lock, and a swap renames the target, never the link.
 */
export function realRunDir(path: string): string {
  const abs = resolve(path)
  try {
    return realpathSync(abs)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(abs) === abs) throw e
    return join(realRunDir(dirname(abs)), basename(abs))
  }
}

function readLock(path: string): LockInfo | null {
  try {
    const info = JSON.parse(readFileSync(path, 'utf8')) as LockInfo
    return Number.isInteger(info.pid) ? info : null
  } catch {
    return null
  }
}

export class RunLock {
  private released = false
  private constructor(
    readonly path: string,
    readonly dir: string,
  ) {}

  /**
   * Take the lock of `dir`, or throw a TrainError naming the process that holds it. `note` hears about a
   * stale lock being taken over.
   */
  /**
   * Refuse, before reading anything of `dir`, a directory that another live process holds: a reader that
   * opened it mid-save would see files of two moments (and blame corruption). A stale lock is left to acquire.
   */
  static refuseIfHeld(dir: string): void {
    const holder = readLock(lockPath(dir))
    if (holder && holder.pid !== process.pid && (holder.host !== hostname() || processAlive(holder.pid)))
      throw new TrainError(
        `${dir} is being written by another moas process (pid ${holder.pid} on ${holder.host}, since ${holder.started}); a run directory has one writer: wait for it to finish or stop it` +
          (holder.host !== hostname() ? `, or delete ${lockPath(dir)} if that machine no longer runs it` : ''),
      )
  }

  static acquire(dir: string, note: (message: string) => void = () => {}): RunLock {
    const path = lockPath(dir)
    const info: LockInfo = { pid: process.pid, host: hostname(), started: new Date().toISOString(), command: process.argv.slice(1).join(' ') }
    const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}`
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(tmp, `${JSON.stringify(info)}\n`)
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          linkSync(tmp, path)
          return new RunLock(path, dir)
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
        }
        const holder = readLock(path)
        if (holder && (holder.host !== info.host || processAlive(holder.pid)))
          throw new TrainError(
            `${dir} is being written by another moas process (pid ${holder.pid} on ${holder.host}, since ${holder.started}); a run directory has one writer: wait for it to finish or stop it` +
              (holder.host !== info.host ? `, or delete ${path} if that machine no longer runs it` : ''),
          )
        note(
          holder
            ? `removing a stale lock of ${dir}: process ${holder.pid} (started ${holder.started}) is no longer running`
            : `removing an unreadable lock file ${path}`,
        )
        try {
          unlinkSync(path)
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e
        }
      }
      throw new TrainError(`${dir}: another process took its lock while a stale one was being removed; try again`)
    } finally {
      unlinkSync(tmp)
    }
  }

  /** Give the lock up (only if it is still ours). */
  release(): void {
    if (this.released) return
    this.released = true
    if (readLock(this.path)?.pid === process.pid) {
      try {
        unlinkSync(this.path)
      } catch {
        // already gone
      }
    }
  }
}
