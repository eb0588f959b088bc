// The runner's contract with every bench: --device is honoured or refused, and every figure says where it came from.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { benchNames, benchRefusal } from './benches'
import { describeMachine, machineInfo } from './machine'

describe('the bench contract', () => {
  it('refuses a --device a bench does not measure on, and --profile off cpu, instead of labelling cpu figures with them', () => {
    expect(benchRefusal('ort-io', 'webgpu', false)).toBe(
      "bench ort-io measures on cpu only (it times onnxruntime-node's cpu tensor transfers themselves); run it without --device webgpu",
    )
    expect(benchRefusal('torch-step', 'wasm', false)).toMatch(/^bench torch-step measures on cpu only \(PyTorch runs on the cpu here/)
    expect(benchRefusal('mlp-step', 'webgpu', true)).toBe(
      "--profile reads ONNX Runtime's profiler on the cpu provider; drop --profile to run bench mlp-step on webgpu",
    )
    expect(benchRefusal('mlp-step', 'webgpu', false)).toBeNull()
    expect(benchRefusal('ort-io', 'cpu', false)).toBeNull()
    // every bench that runs sessions takes any provider unless it says why not
    const refusedOnWasm = benchNames().filter((n) => benchRefusal(n, 'wasm', false))
    expect(refusedOnWasm).toEqual(['ort-io', 'torch-step'])
  })

  it('every results header names the moas version and the commit the figures were measured at', () => {
    const m = machineInfo(1)
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8'))
    expect(m.moas).toBe(pkg.version)
    const head = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { encoding: 'utf8' }).trim()
    expect(m.commit).toMatch(new RegExp(`^${head}(\\+changes)?$`))
    expect(describeMachine(m)).toMatch(new RegExp(`^moas ${pkg.version.replace(/\./g, '\\.')} at ${head}`))
    expect(m.ort).toMatch(/^\d+\.\d+\.\d+/)
  })
})
