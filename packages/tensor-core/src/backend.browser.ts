/** Browser variant of backend.ts: only onnxruntime-web exists here (wasm, webgpu). */
import type * as ortCommon from 'onnxruntime-common'
import { RuntimeError } from './errors'

export type Provider = 'cpu' | 'cuda' | 'webgpu' | 'wasm'
export type Ort = typeof ortCommon

export async function loadOrt(provider: Provider): Promise<Ort> {
  if (provider === 'cpu' || provider === 'cuda')
    throw new RuntimeError(`execution provider '${provider}' needs onnxruntime-node, which does not run in a browser; use 'wasm' or 'webgpu'`)
  return (await import('onnxruntime-web')) as unknown as Ort
}

export function defaultThreads(): number {
  return (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 1
}

/** A page has no environment variables: MOAS_THREADS is Node's (see backend.ts). */
export function threadsFromEnv(_env: Record<string, string | undefined>): number | undefined {
  return undefined
}

/** The most threads a session may ask for (see backend.ts). */
export function maxThreads(): number {
  return Math.max(16, 4 * defaultThreads())
}
