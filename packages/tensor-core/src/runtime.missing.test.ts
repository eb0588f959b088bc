// A provider whose ONNX Runtime package is not installed: the error names the package and how to add it.
import { describe, expect, it, vi } from 'vitest'
import { loadOrt } from './backend'
import { RuntimeError } from './errors'

vi.mock('onnxruntime-node', () => {
  throw new Error("Cannot find package 'onnxruntime-node'")
})

describe('missing runtime package', () => {
  for (const provider of ['cpu', 'cuda'] as const) {
    it(`'${provider}' without onnxruntime-node`, async () => {
      const e = await loadOrt(provider).then(
        () => null,
        (err: Error) => err,
      )
      expect(e).toBeInstanceOf(RuntimeError)
      expect(e!.message).toMatch(
        new RegExp(
          `^execution provider '${provider}' needs the package onnxruntime-node, which could not be loaded \\(.+\\); install it with: pnpm add onnxruntime-node$`,
          's',
        ),
      )
    })
  }
  it("'wasm' still loads (onnxruntime-web is a different package)", async () => {
    const ort = await loadOrt('wasm')
    expect(typeof ort.InferenceSession.create).toBe('function')
  })
})
