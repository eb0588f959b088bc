/**
 * Loads the ONNX Runtime package that serves an execution provider, in Node. The browser build swaps this
 * file for backend.browser.ts (package.json "browser" field), so bundles never see onnxruntime-node.
 */

import { availableParallelism } from 'node:os'
import type * as ortCommon from 'onnxruntime-common'
import { RuntimeError } from './errors'

export type Provider = 'cpu' | 'cuda' | 'webgpu' | 'wasm'
export type Ort = typeof ortCommon

export async function loadOrt(provider: Provider): Promise<Ort> {
  try {
    // cpu, cuda and (Dawn-based) webgpu come from the native Node binding; wasm from onnxruntime-web.
    if (provider === 'wasm') return (await import('onnxruntime-web')) as unknown as Ort
    const ort = (await import('onnxruntime-node')) as unknown as Ort
    // A missing CUDA library or GPU adapter is reported by Session.create as one clear error; ONNX
    // Runtime's own native log line about it (level error) would only repeat it on stderr.
    if (provider === 'cuda' || provider === 'webgpu') ort.env.logLevel = 'fatal'
    return ort
  } catch (e) {
    const pkg = provider === 'wasm' ? 'onnxruntime-web' : 'onnxruntime-node'
    throw new RuntimeError(
      `execution provider '${provider}' needs the package ${pkg}, which could not be loaded (${(e as Error).message}); install it with: pnpm add ${pkg}`,
    )
  }
}

/** Intra-op threads: MOAS_THREADS if set (checked by threadsFromEnv), else one per core. */
export function defaultThreads(): number {
  return threadsFromEnv(process.env) ?? availableParallelism()
}

/**
 * MOAS_THREADS of `env`, the one reading of it: undefined when unset or empty, else a positive integer up to
 * maxThreads(), else a RuntimeError naming the variable and a value that works.
 */
export function threadsFromEnv(env: Record<string, string | undefined>): number | undefined {
  const raw = env.MOAS_THREADS
  if (raw === undefined || raw.trim() === '') return undefined
  const n = Number(raw)
  if (!(Number.isInteger(n) && n > 0))
    throw new RuntimeError(
      `MOAS_THREADS='${raw}' is not a positive integer; set it to a thread count such as ${availableParallelism()} (this machine's cores), or unset it`,
    )
  if (n > maxThreads()) throw new RuntimeError(`MOAS_THREADS=${n} is far above this machine's ${availableParallelism()} cores; use at most ${maxThreads()}`)
  return n
}

/** The most intra-op threads a session may ask for: far more than the cores only slows ONNX Runtime down (and 10,000 hang it). */
export function maxThreads(): number {
  return Math.max(16, 4 * availableParallelism())
}
