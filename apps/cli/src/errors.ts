/**
 * One-line error reports. Known error classes are user mistakes or environment problems with messages
 * that already name the fix; anything else is a bug in moas, reported with a request to file it.
 */
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
  if (e instanceof Error && (e as NodeJS.ErrnoException).code && (e as NodeJS.ErrnoException).syscall) return { line: oneLine(e.message), code: EXIT.error } // a filesystem problem (permission, disk full): the message names the path
  const msg = e instanceof Error ? e.message : String(e)
  return { line: `${oneLine(msg)} (unexpected error in moas: please report it, with the command you ran)`, code: EXIT.error }
}
