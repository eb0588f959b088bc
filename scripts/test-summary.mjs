// Sums the vitest "Tests  N failed | M passed | K skipped (T)" lines of every package in a turbo log and
// prints one closing line, "N passed, N failed, N skipped", for the whole monorepo.
import { readFileSync } from 'node:fs'

const text = readFileSync(process.argv[2], 'utf8').replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '') // ANSI colours
const totals = { passed: 0, failed: 0, skipped: 0 }
let runs = 0
for (const line of text.split('\n')) {
  const m = line.match(/\bTests\s+(.*)\(\d+\)\s*$/)
  if (!m) continue
  runs++
  for (const part of m[1].split('|')) {
    const p = part.trim().match(/^(\d+)\s+(passed|failed|skipped|todo)/)
    if (p) totals[p[2] === 'todo' ? 'skipped' : p[2]] += Number(p[1])
  }
}
if (runs === 0) {
  console.log('0 passed, 1 failed (no vitest summary found in the log)')
  process.exit(1)
}
console.log(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`)
