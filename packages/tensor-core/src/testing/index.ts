/** Test helpers (the `@moas/tensor-core/testing` subpath): float64 gradient checks, the test provider, seeded data. */
export { gradcheck, type GradcheckBuild, type GradcheckOptions, type GradcheckReport, type Sampler, type TensorCheck } from './gradcheck'
export { testProvider, testSession } from './provider'
export { randn, randHost } from './random'
export { type BundleImport, type TestRunner, browserBundleImports, bundleEntry, describeBrowserBundle, nodeOnlyImports } from './bundle'
