// Browser safety of the published build: build dist/ with the package's own tsup config, then bundle it for
// the browser with esbuild (which applies package.json's "browser" field, as Vite and webpack do) and check
// that nothing in the bundle imports onnxruntime-node or a Node built-in. The same bundle for Node must
// import onnxruntime-node, which shows the check can fail.
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import tsupConfig from '../tsup.config'
import { bundleEntry } from './testing/bundle'

const pkgDir = fileURLToPath(new URL('..', import.meta.url))
const require = createRequire(import.meta.url)

let dir: string

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tensor-core-browser-'))
  const { build } = await import('tsup')
  const options = { ...(tsupConfig as object), dts: false, sourcemap: false, silent: true, outDir: join(dir, 'dist') }
  await build({
    ...options,
    config: false,
    entry: Object.fromEntries(Object.entries((tsupConfig as { entry: Record<string, string> }).entry).map(([k, v]) => [k, join(pkgDir, v)])),
  })
  cpSync(join(pkgDir, 'package.json'), join(dir, 'package.json'))
}, 60_000)

afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Bundle dist/index.js for a platform; returns every bare or node: import the bundle still makes. */
const bundle = (platform: 'browser' | 'node') => bundleEntry(join(dir, 'dist', 'index.js'), platform)

describe('browser bundle', () => {
  it('package.json maps dist/backend.js to dist/backend.browser.js, and dist/ imports ./backend.js (not inlined)', async () => {
    const pkg = require(join(pkgDir, 'package.json'))
    expect(pkg.browser).toEqual({ './dist/backend.js': './dist/backend.browser.js' })
    const { readFileSync, readdirSync } = await import('node:fs')
    // index.js and testing.js share chunks (tsup code splitting): the runtime may sit in one of them.
    const code = readdirSync(join(dir, 'dist')).filter((f) => f.endsWith('.js') && !f.startsWith('backend'))
    const texts = code.map((f) => readFileSync(join(dir, 'dist', f), 'utf8'))
    expect(texts.some((t) => /from "\.\/backend\.js"/.test(t))).toBe(true)
    for (const t of texts) expect(t).not.toMatch(/import\(["']onnxruntime-node["']\)/)
    expect(readFileSync(join(dir, 'dist', 'backend.browser.js'), 'utf8')).not.toMatch(/import\(["']onnxruntime-node["']\)|from ["']onnxruntime-node["']/)
  })

  it('never imports onnxruntime-node or a Node built-in', async () => {
    const { imports, text } = await bundle('browser')
    expect(imports.map((i) => i.path)).toContain('onnxruntime-web')
    expect(imports.filter((i) => i.path === 'onnxruntime-node')).toEqual([])
    expect(imports.filter((i) => i.path.startsWith('node:') || ['os', 'fs', 'path'].includes(i.path))).toEqual([])
    expect(text).not.toMatch(/import\(["']onnxruntime-node["']\)|from ["']onnxruntime-node["']/)
  })

  it('the Node bundle of the same files does import onnxruntime-node (the check above can fail)', async () => {
    const { imports } = await bundle('node')
    expect(imports.map((i) => i.path)).toContain('onnxruntime-node')
    expect(imports.some((i) => i.path === 'node:os' || i.path === 'os')).toBe(true)
  })
})
