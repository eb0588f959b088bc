/**
 * One-line error reports. Known error classes are user mistakes or environment problems with messages
 * that already name the fix; anything else is a bug in moas, reported with a request to file it.
 */
import { accessSync, constants, existsSync } from 'node:fs'
import { dirname } from 'node:path'
import { FS_ERRORS } from '@moas/gpt/node'
import { CommanderError } from 'commander'

/** A bad command line that commander cannot see (conflicting or missing flags). */
export class UsageError extends Error {
  override name = 'UsageError'
}

const KNOWN = new Set([
  'ConfigError',
  'CheckpointError',
  'SafetensorsError',
  'DataError',
  'TokenizerError',
  'InferenceError',
  'GraphError',
  'RuntimeError',
  'TrainError',
  'DivergenceError',
  'UsageError',
])

export const EXIT = { ok: 0, error: 1, usage: 2, interrupted: 130 } as const

/** The message on one line: newlines (multi-line help texts) become spaces. */
export const oneLine = (s: string) => s.replace(/\s*\n\s*/g, ' ').trim()

export function reportError(e: unknown): { line: string; code: number } {
  if (e instanceof CommanderError) return { line: oneLine(e.message.replace(/^error: /, '')), code: EXIT.usage }
  if (e instanceof Error && KNOWN.has(e.name)) return { line: oneLine(e.message), code: e.name === 'UsageError' ? EXIT.usage : EXIT.error }
  if (e instanceof Error && (e as NodeJS.ErrnoException).code && (e as NodeJS.ErrnoException).syscall)
    return { line: describeFsError(e as NodeJS.ErrnoException), code: EXIT.error }
  const msg = e instanceof Error ? e.message : String(e)
  return { line: `${oneLine(msg)} (unexpected error in moas: please report it, with the command you ran)`, code: EXIT.error }
}

/**
 * A file-system error as one line naming the path, the cause and the fix (never a raw errno). A recursive
 * mkdir on a read-only or unwritable file system reports ENOENT: the nearest existing folder says why.
 */
export function describeFsError(e: NodeJS.ErrnoException): string {
  let code = e.code ?? ''
  const path = e.path ?? '(unknown path)'
  if (code === 'ENOENT' && e.syscall === 'mkdir' && e.path) {
    let above = dirname(e.path)
    while (!existsSync(above) && dirname(above) !== above) above = dirname(above)
    try {
      accessSync(above, constants.W_OK)
    } catch (inner) {
      code = (inner as NodeJS.ErrnoException).code ?? code
    }
  }
  const known = FS_ERRORS[code]
  if (!known) return oneLine(e.message)
  // moas's own temporaries (lock, staging and atomic-write files) mean nothing to the user: name their folder
  const temporary = /(\.lock\.\d+\.\w+|\.tmp-\d+|\.exporting-\d+)$/.test(path)
  return `${temporary ? `writing in ${dirname(path)}` : path}: ${known.why} (${code} in ${e.syscall}); ${known.fix}`
}
