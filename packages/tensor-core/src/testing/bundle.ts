/**
 * Browser-safety check of a built entry (Node only): bundle it for the browser with esbuild, following
 * every @moas/* import into its own dist/ (applying package.json "browser" fields, as Vite and webpack
 * do), and report every import the bundle still makes to something outside the workspace: Node built-ins
 * and onnxruntime-node must not be among them.
 */
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

interface Esbuild {
  build(options: object): Promise<{ outputFiles: { text: string }[] }>
}
interface PluginBuild {
  onResolve(opts: { filter: RegExp }, cb: (args: { path: string; importer: string; kind: string }) => unknown): void
}

export interface BundleImport {
  path: string
  importer: string
}

const NODE_BUILTINS = new Set([
  'assert',
  'buffer',
  'child_process',
  'crypto',
  'events',
  'fs',
  'fs/promises',
  'module',
  'os',
  'path',
  'process',
  'stream',
  'url',
  'util',
  'worker_threads',
  'zlib',
])

/** Imports of packages outside @moas/* that a browser bundle of `entry` makes, each with its importer. */
export async function browserBundleImports(entry: string, platform: 'browser' | 'node' = 'browser'): Promise<BundleImport[]> {
  return (await bundleEntry(entry, platform)).imports
}

/** The bundle of `entry` for a platform (its text) and the imports it leaves outside the workspace. */
export async function bundleEntry(entry: string, platform: 'browser' | 'node' = 'browser'): Promise<{ imports: BundleImport[]; text: string }> {
  // esbuild comes with tsup (the workspace's build tool); resolve it from there.
  const require = createRequire(import.meta.url)
  const esbuild: Esbuild = createRequire(require.resolve('tsup'))('esbuild')
  const imports: BundleImport[] = []
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform,
    format: 'esm',
    write: false,
    logLevel: 'silent',
    plugins: [
      {
        name: 'record-external',
        setup(b: PluginBuild) {
          b.onResolve({ filter: /^[^./]/ }, (args) => {
            if (args.path.startsWith('@moas/')) return undefined // follow into the workspace package's dist
            imports.push({ path: args.path, importer: args.importer })
            return { path: args.path, external: true }
          })
        },
      },
    ],
  })
  return { imports, text: result.outputFiles[0].text }
}

/** The Node-only imports among them (node:*, Node built-in names, onnxruntime-node). */
export function nodeOnlyImports(imports: readonly BundleImport[]): BundleImport[] {
  return imports.filter((i) => i.path.startsWith('node:') || NODE_BUILTINS.has(i.path) || i.path === 'onnxruntime-node')
}

/** The parts of a test runner describeBrowserBundle uses (vitest's, passed in: this package does not depend on it). */
export interface TestRunner {
  describe: (name: string, fn: () => void) => void
  it: (name: string, fn: () => Promise<void>) => void
  expect: (value: unknown) => { toEqual(v: unknown): void; toContain(v: unknown): void }
}

/**
 * The browser-safety test of a package's main entry, for that package's test suite: its built
 * `dist/index.js` bundled for the browser imports no Node built-in and not onnxruntime-node, while the Node
 * bundle of the same entry does reach onnxruntime-node (so the check can fail).
 */
export function describeBrowserBundle(entry: URL, { describe, it, expect }: TestRunner): void {
  const path = fileURLToPath(entry)
  describe(`browser bundle of ${path.split('/packages/').at(-1)}`, () => {
    it('imports no Node built-in and not onnxruntime-node', async () => {
      const imports = await browserBundleImports(path)
      expect(nodeOnlyImports(imports)).toEqual([])
      expect(imports.map((i) => i.path)).toContain('onnxruntime-web')
    })
    it('the Node bundle of the same entry does import onnxruntime-node', async () => {
      expect(nodeOnlyImports(await browserBundleImports(path, 'node')).map((i) => i.path)).toContain('onnxruntime-node')
    })
  })
}
