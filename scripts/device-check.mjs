#!/usr/bin/env node
// One command per accelerator, for a machine that has it: trains the same smoke model a few steps on cpu
// and on DEVICE, compares the losses (float32 GEMMs on a GPU differ from the CPU's in the last bits: the
// tolerance is 1e-3 nats), generates with both and compares the greedy text, and prints what ran and the
// median step time of each. Exits 1 when the losses disagree or the records do not name DEVICE.
//
//   pnpm build && node scripts/device-check.mjs cuda [steps = 20]     # NVIDIA GPU, CUDA 12 (README)
//   pnpm build && node scripts/device-check.mjs webgpu [steps = 20]   # onnxruntime-node's WebGPU (Dawn)
//
// `wasm` runs here too (onnxruntime-web in Node); CI runs it that way to keep the script working.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const DEVICES = ['cuda', 'webgpu', 'wasm']
const [device, steps = '20'] = process.argv.slice(2)
if (!DEVICES.includes(device) || !/^[1-9]\d*$/.test(steps)) {
  console.error(`usage: node scripts/device-check.mjs <${DEVICES.join('|')}> [steps = 20]`)
  process.exit(2)
}
const cli = fileURLToPath(new URL('../apps/cli/dist/index.js', import.meta.url))
const work = mkdtempSync(join(tmpdir(), `moas-${device}-`))
const moas = (args) => execFileSync(process.execPath, [cli, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
let failed = true
try {
  const runs = {}
  for (const d of ['cpu', device]) {
    const out = join(work, d)
    const lines = moas(['train', '--attention', 'moas', '--preset', 'smoke', '--steps', steps, '--out', out, '--device', d])
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    const records = lines.filter((r) => r.step !== undefined && !r.done)
    const text = JSON.parse(
      moas(['generate', '--checkpoint', out, '--prompt', 'the ', '--tokens', '60', '--temperature', '0', '--json', '--device', d]).split('\n')[0],
    ).completion
    runs[d] = {
      losses: records.map((r) => r.loss),
      ms: median(records.slice(1).map((r) => r.ms)),
      text,
      devices: [...new Set(records.map((r) => r.device))],
    }
  }
  const worst = Math.max(...runs.cpu.losses.map((l, i) => Math.abs(l - runs[device].losses[i])))
  console.log(`moas smoke model, ${steps} training steps on cpu and on ${device}`)
  console.log(`losses: largest |cpu - ${device}| = ${worst.toExponential(2)} (tolerance 1e-3)`)
  console.log(`step time (median): cpu ${runs.cpu.ms} ms, ${device} ${runs[device].ms} ms; the ${device} records say device ${runs[device].devices.join(',')}`)
  console.log(
    `greedy text ${runs.cpu.text === runs[device].text ? 'identical' : 'DIFFERS'}:\n  cpu:  ${JSON.stringify(runs.cpu.text)}\n  ${device}: ${JSON.stringify(runs[device].text)}`,
  )
  failed = !(worst <= 1e-3) || runs[device].devices.join() !== device
} catch (e) {
  // the CLI has printed its one-line reason (e.g. no CUDA libraries) on stderr
  console.error(`device check: ${device} did not run (${e.status === undefined ? e.message : `moas exited ${e.status}`})`)
} finally {
  rmSync(work, { recursive: true, force: true })
}
process.exitCode = failed ? 1 : 0
