/**
 * The execution provider every tensor-core test runs on, so one set of test files covers both runtimes:
 * `MOAS_TEST_PROVIDER=wasm` (set by vitest.web.config.ts) runs them on onnxruntime-web's wasm backend,
 * unset means 'cpu' (onnxruntime-node). Model packages can use the same helper in their own tests.
 */

import { RuntimeError } from '../errors'
import type { Graph } from '../graph'
import { PROVIDERS, type Provider, Session, type SessionOptions } from '../runtime'
import type { SerializeOptions } from '../serialize'

export function testProvider(): Provider {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.MOAS_TEST_PROVIDER
  if (!env) return 'cpu'
  if (!PROVIDERS.includes(env as Provider)) throw new RuntimeError(`MOAS_TEST_PROVIDER='${env}' is not a provider; use one of ${PROVIDERS.join(', ')}`)
  return env as Provider
}

/** Session.create on the test provider (options may still override it). */
export function testSession(model: Graph | Uint8Array, opts: SessionOptions & SerializeOptions = {}): Promise<Session> {
  return Session.create(model, { provider: testProvider(), ...opts })
}
