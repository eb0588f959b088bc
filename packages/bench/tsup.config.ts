import { defineConfig } from 'tsup'

export default defineConfig({
  // run.ts is the `pnpm bench` entry point; index.ts the library API.
  entry: ['src/index.ts', 'src/run.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  clean: true,
  sourcemap: true,
  target: 'node20',
})
