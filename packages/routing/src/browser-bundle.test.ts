// The package's main entry is browser-safe (see describeBrowserBundle).
import { describeBrowserBundle } from '@moas/tensor-core/testing'
import { describe, expect, it } from 'vitest'

describeBrowserBundle(new URL('../dist/index.js', import.meta.url), { describe, it, expect })
