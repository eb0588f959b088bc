// Regenerates the demo model the playground loads by default (public/demo-model/): a `moas` smoke model
// (MHA / GQA / MQA branches mixed by a router, so the routing view has something to show) trained for
// 300 updates on the embedded synthetic corpus with seed 0, then exported. Deterministic: the same files
// every time on the same ONNX Runtime. The folder is committed (about 0.7 MB) so the page and its tests
// work offline without training first.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const cli = fileURLToPath(new URL('../../cli/dist/index.js', import.meta.url))
const out = fileURLToPath(new URL('../public/demo-model', import.meta.url))
const work = mkdtempSync(join(tmpdir(), 'moas-demo-'))
const moas = (...args) => execFileSync(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, MOAS_THREADS: '1' } })
try {
  moas('train', '--attention', 'moas', '--preset', 'smoke', '--steps', '300', '--seed', '0', '--out', join(work, 'run'))
  rmSync(out, { recursive: true, force: true })
  moas('export', '--checkpoint', join(work, 'run'), '--out', out)
  console.log(`wrote ${out}`)
} finally {
  rmSync(work, { recursive: true, force: true })
}
