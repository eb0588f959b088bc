// One place that maps every @moas/* package (and its ./node and ./testing subpaths) to its TypeScript
// source, so tests run against sources (no rebuild of dependencies needed while developing) in every
// package's vitest config.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('.', import.meta.url))
const pkgs = ['tensor-core', 'attention-schemes', 'routing', 'gpt', 'inference', 'trainer', 'bench']
const subpaths: [string, string][] = [
  ['', 'index'],
  ['/node', 'node'],
  ['/testing', 'testing/index'],
]

// Exact matches (a regex per entry), so '@moas/gpt' does not also rewrite '@moas/gpt/node'.
export const moasAliases = pkgs.flatMap((p) =>
  subpaths
    .map(([sub, file]) => ({ find: new RegExp(`^@moas/${p}${sub}$`), replacement: `${root}packages/${p}/src/${file}.ts` }))
    .filter((a) => existsSync(a.replacement)),
)
