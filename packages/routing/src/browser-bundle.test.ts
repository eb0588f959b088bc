// The package's main entry is browser-safe (see describeBrowserBundle).
import { describeBrowserBundle } from '@moas/tensor-core/testing'

describeBrowserBundle(new URL('../dist/index.js', import.meta.url))
