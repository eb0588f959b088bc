// The package's main entry is browser-safe: its built dist/index.js, bundled for the browser with every
// @moas dependency, imports no Node built-in and not onnxruntime-node. The Node bundle of the same entry
// does reach onnxruntime-node (through tensor-core's backend), which shows the check can fail.
import { fileURLToPath } from 'node:url'
import { browserBundleImports, nodeOnlyImports } from '@moas/tensor-core/testing'
import { describe, expect, it } from 'vitest'

const entry = fileURLToPath(new URL('../dist/index.js', import.meta.url))

describe('browser bundle of the main entry', () => {
  it('imports no Node built-in and not onnxruntime-node', async () => {
    const imports = await browserBundleImports(entry)
    expect(nodeOnlyImports(imports)).toEqual([])
    expect(imports.map((i) => i.path)).toContain('onnxruntime-web')
  })

  it('the Node bundle of the same entry does import onnxruntime-node', async () => {
    expect(nodeOnlyImports(await browserBundleImports(entry, 'node')).map((i) => i.path)).toContain('onnxruntime-node')
  })
})
