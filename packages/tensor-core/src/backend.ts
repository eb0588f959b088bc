/**
 * Loads the ONNX Runtime package that serves an execution provider, in Node. The browser build swaps this
 * file for backend.browser.ts (package.json "browser" field), so bundles never see onnxruntime-node.
 */
import type * as ortCommon from 'onnxruntime-common'
import { availableParallelism } from 'node:os'
import { RuntimeError } from './errors'

export type Provider = 'cpu' | 'cuda' | 'webgpu' | 'wasm'
export type Ort = typeof ortCommon

export async function loadOrt(provider: Provider): Promise<Ort> {
  try {
    // cpu, cuda and (Dawn-based) webgpu come from the native Node binding; wasm from onnxruntime-web.
    if (provider === 'wasm') return (await import('onnxruntime-web')) as unknown as Ort
    return (await import('onnxruntime-node')) as unknown as Ort
  } catch (e) {
    const pkg = provider === 'wasm' ? 'onnxruntime-web' : 'onnxruntime-node'
    throw new RuntimeError(`execution provider '${provider}' needs the package ${pkg}, which could not be loaded (${(e as Error).message}); install it with: pnpm add ${pkg}`)
  }
}

/** Intra-op threads: MOAS_THREADS if set, else one per core. */
export function defaultThreads(): number {
  const env = Number(process.env.MOAS_THREADS)
  return Number.isInteger(env) && env > 0 ? env : availableParallelism()
}
