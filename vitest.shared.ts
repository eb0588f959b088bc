// One place that maps every @moas/* package to its TypeScript source, so tests run against
// sources (no rebuild of dependencies needed while developing) in every package's vitest config.
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('.', import.meta.url))
const pkgs = ['tensor-core', 'attention-schemes', 'routing', 'gpt', 'trainer', 'bench']

export const moasAliases: Record<string, string> = Object.fromEntries(
  pkgs.map((p) => [`@moas/${p}`, `${root}packages/${p}/src/index.ts`]),
)
