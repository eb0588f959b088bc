// The browser build of the runtime: backend.ts is swapped for backend.browser.ts (as package.json's
// "browser" field does in bundlers), so only onnxruntime-web exists. Here that swap is done with vi.mock
// and the web package runs inside Node.
import { describe, expect, it, vi } from 'vitest'
import { RuntimeError } from './errors'
import { Graph } from './graph'
import * as ops from './ops'
import { hostTensor, Session } from './runtime'

vi.mock('./backend', async () => await import('./backend.browser'))

const graph = () => {
  const g = new Graph('browser')
  g.output('y', ops.exp(g.input('x', 'float32', [3])))
  return g
}
const rejected = async (p: Promise<unknown>): Promise<Error> => {
  try {
    await p
  } catch (e) {
    return e as Error
  }
  throw new Error('expected a rejection')
}

describe('runtime with the browser backend', () => {
  it('runs on wasm', async () => {
    const s = await Session.create(graph(), { provider: 'wasm' })
    expect(s.provider).toBe('wasm')
    const out = await s.run({ x: hostTensor('float32', [3], [0, 1, 2]) })
    expect(Array.from(out.y.data as Float32Array)).toEqual([1, Math.fround(Math.E), Math.fround(Math.exp(2))])
  })

  for (const provider of ['cpu', 'cuda'] as const) {
    it(`'${provider}' says it needs onnxruntime-node and what to use instead`, async () => {
      const e = await rejected(Session.create(graph(), { provider }))
      expect(e).toBeInstanceOf(RuntimeError)
      expect(e.message).toBe(`execution provider '${provider}' needs onnxruntime-node, which does not run in a browser; use 'wasm' or 'webgpu'`)
    })
  }

  it("'webgpu' without an adapter fails with what is missing, and does not fall back to wasm", async () => {
    const e = await rejected(Session.create(graph(), { provider: 'webgpu' }))
    expect(e).toBeInstanceOf(RuntimeError)
    expect(e.message).toMatch(/^execution provider 'webgpu' is not available here \(.*\)\. WebGPU needs a GPU adapter: .*navigator\.gpu/)
  })
})
