/** The PyTorch reference's fixtures (tools/reference), for this package's tests. Node only. */
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { type HostTensor, hostTensor } from '@moas/tensor-core'
import { readSafetensors, type SafeTensor } from './safetensors'

export const FIXTURE_DIR = fileURLToPath(new URL('../test/fixtures/', import.meta.url))

export interface Fixture {
  name: string
  config: Record<string, unknown>
  ce_loss: number
  balance_loss: number
  train_loss: number
  tensors: Map<string, SafeTensor>
}

export function fixtureNames(): string[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5))
    .sort()
}

export function loadFixture(name: string): Fixture {
  const json = JSON.parse(readFileSync(`${FIXTURE_DIR}${name}.json`, 'utf8'))
  const { tensors } = readSafetensors(readFileSync(`${FIXTURE_DIR}${name}.safetensors`), `${name}.safetensors`)
  return { name, config: json.config, ce_loss: json.ce_loss, balance_loss: json.balance_loss, train_loss: json.train_loss, tensors }
}

/** The fixture's `param.*` tensors as graph feeds, cast to `dtype`. */
export function paramFeeds(f: Fixture, dtype: 'float32' | 'float64' = 'float32'): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {}
  for (const [name, t] of f.tensors) {
    if (!name.startsWith('param.')) continue
    const data = dtype === 'float32' ? Float32Array.from(t.data as Float32Array) : Float64Array.from(t.data as Float32Array)
    out[name.slice(6)] = hostTensor(dtype, t.shape, data)
  }
  return out
}
