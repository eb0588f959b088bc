/**
 * --device: every command runs its sessions on the chosen ONNX Runtime execution provider and records
 * which one ran. wasm (onnxruntime-web inside Node) is always available, so it is compared with cpu here;
 * cuda and webgpu depend on the machine: where they are missing the error is one line that says what is
 * needed (these tests never assert that they fail, since they work where the hardware and libraries are).
 */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { readLog } from '@moas/trainer/node'
import { describe, expect, it } from 'vitest'
import { expectOneLineError, run, tempDirs } from './test-helpers'

const tempDir = tempDirs('moas-dev-')
const TINY = [
  '--set',
  'n_layer=1',
  '--set',
  'n_embd=16',
  '--set',
  'n_head=2',
  '--set',
  'block_size=16',
  '--batch-size',
  '4',
  '--eval-iters',
  '2',
  '--eval-interval',
  '3',
]

describe('--device', () => {
  it('wasm trains the same losses as cpu (float32, within 1e-4) and records the device; eval and generate follow', async () => {
    const runs: Record<string, string> = {}
    for (const device of ['cpu', 'wasm']) {
      const dir = join(tempDir(), device)
      const r = await run(['train', '--attention', 'gqe', '--preset', 'smoke', '--steps', '3', '--out', dir, '--device', device, ...TINY])
      expect(r.code, r.stderr).toBe(0)
      expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toMatchObject({ done: true, device })
      runs[device] = dir
    }
    const [cpu, wasm] = [readLog(join(runs.cpu, 'log.jsonl')), readLog(join(runs.wasm, 'log.jsonl'))]
    expect(wasm.map((r) => r.device)).toEqual(['wasm', 'wasm', 'wasm'])
    wasm.forEach((r, i) => expect(Math.abs(r.loss - cpu[i].loss), `step ${i + 1}`).toBeLessThan(1e-4))
    const gen = async (device: string) =>
      (await run(['generate', '--checkpoint', runs.cpu, '--prompt', 'ab', '--tokens', '8', '--temperature', '0', '--json', '--device', device])).stdout.split(
        '\n',
      )
    const [g1, g2] = [await gen('cpu'), await gen('wasm')]
    expect(JSON.parse(g2[0]).completion).toBe(JSON.parse(g1[0]).completion)
    expect(JSON.parse(g2[1]).device).toBe('wasm')
  })

  it('cuda and webgpu: either they run, or one line names what is missing', async () => {
    for (const device of ['cuda', 'webgpu']) {
      const r = await run(['generate', '--checkpoint', join(tempDir(), 'none'), '--prompt', 'a', '--device', device])
      expect(r.code).not.toBe(0) // no checkpoint there: this checks the flag is accepted and errors stay one line
      // the device is probed before the command starts, so a missing provider is named first
      expectOneLineError(r, new RegExp(`no checkpoint at|'${device}' is not available here`))
    }
    const dir = join(tempDir(), 'ck')
    expect((await run(['train', '--attention', 'mha', '--preset', 'smoke', '--steps', '1', '--out', dir, ...TINY])).code).toBe(0)
    for (const device of ['cuda', 'webgpu']) {
      const r = await run(['generate', '--checkpoint', dir, '--prompt', 'a', '--tokens', '2', '--device', device])
      if (r.code === 0) continue // the provider works on this machine
      expectOneLineError(r, device === 'cuda' ? /'cuda' is not available here.*ONNXRUNTIME_NODE_INSTALL=cuda12/ : /'webgpu' is not available here.*Vulkan/)
    }
  })

  it("cuda and webgpu in a real process: where they are missing, stderr is the one error line (the native libraries' own lines stay in the probe's child)", async () => {
    const dir = join(tempDir(), 'ck-gpu')
    expect((await run(['train', '--attention', 'mha', '--preset', 'smoke', '--steps', '1', '--out', dir, ...TINY])).code).toBe(0)
    const cli = fileURLToPath(new URL('../dist/index.js', import.meta.url))
    for (const [device, help] of [
      ['webgpu', 'WebGPU needs a GPU adapter'],
      ['cuda', 'The CUDA provider needs an NVIDIA GPU'],
    ]) {
      const r = spawnSync(process.execPath, [cli, 'generate', '--checkpoint', dir, '--prompt', 'a', '--tokens', '2', '--device', device], { encoding: 'utf8' })
      if (r.status === 0) continue // the provider works on this machine
      expect(r.status).toBe(1)
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1)
      expect(r.stderr).toMatch(new RegExp(`^moas: error: execution provider '${device}' is not available here \\(.*\\)\\. ${help}`))
    }
  })

  it('an unknown device is a usage error listing the providers', async () => {
    const r = await run(['eval', '--checkpoint', 'x', '--text', 'y', '--device', 'tpu'])
    expectOneLineError(r, /--device.*tpu.*cpu, cuda, webgpu, wasm/)
    expect(r.code).toBe(2)
  })
})
