import { defineConfig } from 'tsup'

export default defineConfig({
  // run.ts is the `pnpm bench` entry point; index.ts the library API; prefill-worker.js one prefill
  // measurement per process (its own peak memory).
  entry: { index: 'src/index.ts', run: 'src/run.ts', 'prefill-worker': 'src/prefillWorker.ts' },
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  clean: true,
  sourcemap: true,
  target: 'node20',
})
