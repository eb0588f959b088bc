import { defineConfig } from 'vitest/config'
import { moasAliases } from '../vitest.shared'

export default defineConfig({
  resolve: { alias: moasAliases },
  test: { include: ['src/**/*.test.ts'], testTimeout: 120_000 },
})
