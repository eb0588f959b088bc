import { defineConfig } from 'vitest/config'
import { moasAliases } from '../../vitest.shared'

export default defineConfig({
  resolve: { alias: moasAliases },
  test: { include: ['test/**/*.test.ts'], testTimeout: 300_000, hookTimeout: 300_000 },
})
