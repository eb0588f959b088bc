/**
 * Browser-safety check of a built entry (Node only): bundle it for the browser with esbuild, following
 * every @moas/* import into its own dist/ (applying package.json "browser" fields, as Vite and webpack
 * do), and report every import the bundle still makes to something outside the workspace: Node built-ins
 * and onnxruntime-node must not be among them.
 */
import { createRequire } from 'node:module'

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

const NODE_BUILTINS = new Set(['assert', 'buffer', 'child_process', 'crypto', 'events', 'fs', 'fs/promises', 'module', 'os', 'path', 'process', 'stream', 'url', 'util', 'worker_threads', 'zlib'])

/** Imports of packages outside @moas/* that a browser bundle of `entry` makes, each with its importer. */
export async function browserBundleImports(entry: string, platform: 'browser' | 'node' = 'browser'): Promise<BundleImport[]> {
  // esbuild comes with tsup (the workspace's build tool); resolve it from there.
  const require = createRequire(import.meta.url)
  const esbuild: Esbuild = createRequire(require.resolve('tsup'))('esbuild')
  const imports: BundleImport[] = []
  await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform,
    format: 'esm',
    write: false,
    logLevel: 'silent',
    plugins: [{
      name: 'record-external',
      setup(b: PluginBuild) {
        b.onResolve({ filter: /^[^./]/ }, (args) => {
          if (args.path.startsWith('@moas/')) return undefined // follow into the workspace package's dist
          imports.push({ path: args.path, importer: args.importer })
          return { path: args.path, external: true }
        })
      },
    }],
  })
  return imports
}

/** The Node-only imports among them (node:*, Node built-in names, onnxruntime-node). */
export function nodeOnlyImports(imports: readonly BundleImport[]): BundleImport[] {
  return imports.filter((i) => i.path.startsWith('node:') || NODE_BUILTINS.has(i.path) || i.path === 'onnxruntime-node')
}
