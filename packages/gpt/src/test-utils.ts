/** Helpers shared by the tests of this package (not exported from the package). */
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { type HostTensor, hostTensor } from '@moas/tensor-core'
import { type SafeTensor, readSafetensors } from './safetensors'

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
  return readdirSync(FIXTURE_DIR).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort()
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

export const toNumbers = (a: ArrayLike<number | bigint>) => Array.from(a as ArrayLike<number>, Number)

/** ‖a − b‖ / ‖b‖ (norm-wise relative error). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`)
  let num = 0
  let den = 0
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2
    den += b[i] ** 2
  }
  return Math.sqrt(num) / Math.sqrt(den)
}

/** max |a − b| / max |b| (element-wise check scaled by the reference's magnitude). */
export function maxAbsErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0
  let den = 0
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]))
    den = Math.max(den, Math.abs(b[i]))
  }
  return num / den
}

/** A deterministic array of n token ids in [0, V). */
export function tokens(n: number, V: number, seed = 1): number[] {
  let s = seed >>> 0
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return s % V
  })
}
