/** Where results go: `results/<bench>.json` (everything, raw samples included) and `results/<bench>.md`. */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describeMachine, type MachineInfo } from './machine'

/** packages/bench/results: the committed figures the READMEs quote (written only with --update-results). */
export const COMMITTED_RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url))
/** packages/bench/results/latest: where a plain run writes (git ignores it), so benchmarking never dirties the tree. */
export const DEFAULT_RESULTS_DIR = fileURLToPath(new URL('../results/latest/', import.meta.url))

export function writeResults(
  dir: string,
  bench: string,
  machine: MachineInfo,
  result: unknown,
  markdown: string,
  extra: Record<string, string> = {},
): { json: string; md: string } {
  mkdirSync(dir, { recursive: true })
  const json = join(dir, `${bench}.json`)
  const md = join(dir, `${bench}.md`)
  writeFileSync(json, `${JSON.stringify({ bench, machine, result }, null, 2)}\n`)
  writeFileSync(md, `# ${bench}\n\n${machineLine(machine)}\n\n${markdown}\n`)
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(dir, name), text)
  return { json, md }
}

export const machineLine = (m: MachineInfo) =>
  `Measured ${m.date.slice(0, 16).replace('T', ' ')} UTC on ${describeMachine(m)}${m.device ? `, device ${m.device}` : ''}.`

/** A markdown table from a header and rows of cells. */
export function mdTable(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const line = (cells: readonly (string | number)[]) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}
