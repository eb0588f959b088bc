import { afterEach, describe, expect, it } from 'vitest'
import { RuntimeError } from '../errors'
import { Graph } from '../graph'
import * as ops from '../ops'
import { testProvider, testSession } from './provider'

describe('test provider helper', () => {
  const saved = process.env.MOAS_TEST_PROVIDER
  afterEach(() => {
    if (saved === undefined) delete process.env.MOAS_TEST_PROVIDER
    else process.env.MOAS_TEST_PROVIDER = saved
  })

  it('sessions made by the helper run on the configured provider (cpu unless MOAS_TEST_PROVIDER says otherwise)', async () => {
    const g = new Graph('p')
    g.output('y', ops.neg(g.input('x', 'float32', [1])))
    const s = await testSession(g)
    expect(s.provider).toBe(saved ?? 'cpu')
    expect(testProvider()).toBe(saved ?? 'cpu')
  })

  it('rejects an unknown MOAS_TEST_PROVIDER instead of silently testing cpu', () => {
    process.env.MOAS_TEST_PROVIDER = 'wgpu'
    expect(() => testProvider()).toThrow(RuntimeError)
    expect(() => testProvider()).toThrow("MOAS_TEST_PROVIDER='wgpu' is not a provider; use one of cpu, cuda, webgpu, wasm")
  })
})
