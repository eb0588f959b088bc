/** A comparison's folder: the files compare writes there, and the checks that it writes only into its own. */

import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { VARIANTS } from '@moas/gpt'
import { TrainError } from '../errors'
export const COMPARE_FILES = { markdown: 'results.md', json: 'results.json', chart: 'val_loss.svg', summary: 'summary.json', marker: 'compare.json' } as const

function isCompareEntry(name: string): boolean {
  const base = name.replace(/\.tmp$/, '')
  return (Object.values(COMPARE_FILES) as string[]).includes(base) || (VARIANTS as readonly string[]).includes(name.replace(/\.(next|prev)$/, ''))
}

/**
 * compare writes only into a folder of its own: an --out holding anything else (a results.md the user
 * wrote, unrelated files) is refused rather than overwritten.
 */
export function checkCompareDir(out: string): void {
  if (!existsSync(out)) return
  const entries = readdirSync(out)
  const foreign = entries.filter((e) => !isCompareEntry(e))
  const ours = existsSync(join(out, COMPARE_FILES.marker))
  const results = entries.filter((e) => [COMPARE_FILES.markdown, COMPARE_FILES.json, COMPARE_FILES.chart].includes(e as never))
  if (foreign.length || (!ours && results.length))
    throw new TrainError(
      `${out} holds files that moas compare did not write (${[...foreign, ...(ours ? [] : results)].slice(0, 4).join(', ')}); compare writes into a folder of its own: choose an empty or new --out`,
    )
}

/** compare.json of a compare folder (`collected`: the run directories a --collect table was made from), or null. */
export function readMarker(out: string): { collected?: string[] } | null {
  const path = join(out, COMPARE_FILES.marker)
  if (!existsSync(path)) return null
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch {
    return {}
  }
}
