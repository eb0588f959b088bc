#!/usr/bin/env node
// For a machine with an NVIDIA GPU, CUDA 12 and onnxruntime-node's CUDA libraries (see the README,
// "Execution providers"): trains the same smoke model a few steps on cpu and on cuda, compares the losses
// (float32 GEMMs on the GPU differ from the CPU's in the last bits: the tolerance is 1e-3 nats), generates
// with both and compares the greedy text, and prints the median step time of each. Exits 1 on a mismatch.
//
//   pnpm build && node scripts/cuda-check.mjs [steps = 20]
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const cli = fileURLToPath(new URL('../apps/cli/dist/index.js', import.meta.url))
const steps = process.argv[2] ?? '20'
const work = mkdtempSync(join(tmpdir(), 'moas-cuda-'))
const moas = (args) => execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
let failed = false
try {
  const runs = {}
  for (const device of ['cpu', 'cuda']) {
    const out = join(work, device)
    const lines = moas(['train', '--attention', 'moas', '--preset', 'smoke', '--steps', steps, '--out', out, '--device', device])
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    const records = lines.filter((r) => r.step !== undefined && !r.done)
    const text = JSON.parse(
      moas(['generate', '--checkpoint', out, '--prompt', 'the ', '--tokens', '60', '--temperature', '0', '--json', '--device', device]).split('\n')[0],
    ).completion
    runs[device] = {
      losses: records.map((r) => r.loss),
      ms: median(records.slice(1).map((r) => r.ms)),
      text,
      devices: [...new Set(records.map((r) => r.device))],
    }
  }
  const worst = Math.max(...runs.cpu.losses.map((l, i) => Math.abs(l - runs.cuda.losses[i])))
  console.log(`losses: largest |cpu - cuda| over ${steps} steps = ${worst.toExponential(2)} (tolerance 1e-3)`)
  console.log(`step time (median): cpu ${runs.cpu.ms} ms, cuda ${runs.cuda.ms} ms; cuda records say device ${runs.cuda.devices.join(',')}`)
  console.log(
    `greedy text ${runs.cpu.text === runs.cuda.text ? 'identical' : 'DIFFERS'}:\n  cpu:  ${JSON.stringify(runs.cpu.text)}\n  cuda: ${JSON.stringify(runs.cuda.text)}`,
  )
  failed = worst > 1e-3 || runs.cuda.devices.join() !== 'cuda'
} finally {
  rmSync(work, { recursive: true, force: true })
}
process.exitCode = failed ? 1 : 0
