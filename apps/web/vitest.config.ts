import { defineConfig } from 'vitest/config'
import { moasAliases } from '../../vitest.shared'

export default defineConfig({
  resolve: { alias: moasAliases },
  // WebGPU in CI is SwiftShader (a CPU): a few training updates take minutes when the machine is busy
  test: { include: ['test/**/*.test.ts'], testTimeout: 900_000, hookTimeout: 300_000 },
})
