// The same test files on onnxruntime-web's wasm backend (inside Node): every test that creates a Session
// goes through testing/provider.ts, which reads MOAS_TEST_PROVIDER. `pnpm test` runs both configs.
//
// Nothing is excluded: every op the tests use has a wasm kernel, float64 included (Erf, which has no float64
// kernel on either runtime, is tested in float32 on both). Tests that name their providers explicitly
// (runtime*.test.ts: cpu vs wasm side by side, provider errors) and the provider-independent ones
// (browser bundle, graph errors) simply run a second time.
import { defineConfig, mergeConfig } from 'vitest/config'
import base from './vitest.config'

export default mergeConfig(
  base,
  defineConfig({
    test: { env: { MOAS_TEST_PROVIDER: 'wasm' } },
  }),
)
