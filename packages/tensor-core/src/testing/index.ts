/** Test helpers (the `@moas/tensor-core/testing` subpath): float64 gradient checks, the test provider, seeded data. */

export { type BundleImport, browserBundleImports, bundleEntry, describeBrowserBundle, nodeOnlyImports, type TestRunner } from './bundle'
export { type GradcheckBuild, type GradcheckOptions, type GradcheckReport, gradcheck, type Sampler, type TensorCheck } from './gradcheck'
export { testProvider, testSession } from './provider'
export { randHost, randn } from './random'
