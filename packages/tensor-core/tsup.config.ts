import { defineConfig, type Options } from 'tsup'

type Plugin = NonNullable<Options['esbuildPlugins']>[number]

/**
 * Keep `./backend` a separate file that index.js imports at run time ('./backend.js'), instead of bundling
 * it in: package.json's "browser" field then swaps dist/backend.js for dist/backend.browser.js in browser
 * bundlers, so a browser bundle never reaches onnxruntime-node.
 */
const backendAsSeparateFile: Plugin = {
  name: 'backend-as-separate-file',
  setup(build) {
    build.onResolve({ filter: /^\.\/backend$/ }, () => ({ path: './backend.js', external: true }))
  },
}

export default defineConfig({
  entry: { index: 'src/index.ts', testing: 'src/testing/index.ts', backend: 'src/backend.ts', 'backend.browser': 'src/backend.browser.ts' },
  format: ['esm'],
  dts: { entry: { index: 'src/index.ts', testing: 'src/testing/index.ts' } },
  clean: true,
  sourcemap: true,
  target: 'es2022',
  esbuildPlugins: [backendAsSeparateFile],
})
