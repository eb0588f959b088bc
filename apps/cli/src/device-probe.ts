/**
 * Whether onnxruntime-node can open a session on a GPU provider, asked in a child process. Native code
 * writes straight to the process's stderr before ONNX Runtime reports the failure (Dawn's Vulkan warnings
 * for WebGPU, ONNX Runtime's own "[E:onnxruntime…] Failed to load library" for CUDA); in a child they are
 * heard by nobody, and the user gets one line.
 */
import { spawnSync } from 'node:child_process'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Provider } from '@moas/tensor-core'

/** Providers whose native library writes to stderr on failure, so they are probed in a child first. */
export const PROBED_PROVIDERS: readonly Provider[] = ['cuda', 'webgpu']

const PROBE = `
import { Graph, ops, Session } from '@moas/tensor-core'
const g = new Graph('probe')
g.output('y', ops.add(g.input('x', 'float32', [1]), g.scalar(1, 'float32')))
try {
  const s = await Session.create(g, { provider: process.argv[1] })
  await s.run({ x: { dtype: 'float32', shape: [1], data: new Float32Array([1]) } })
  await s.release()
} catch (e) {
  process.stdout.write(e instanceof Error ? e.message : String(e))
  process.exitCode = 1
}
`

/** null when a session opens on `provider`; else ONNX Runtime's reason as tensor-core words it (one line). */
export function probeProvider(provider: Provider): string | null {
  // resolved from the CLI's own folder, where @moas/tensor-core is installed beside it
  const cwd = dirname(fileURLToPath(import.meta.url))
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', PROBE, provider], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 120_000,
  })
  if (r.status === 0) return null
  const reason = r.stdout.trim().split('\n')[0]
  return reason || `execution provider '${provider}' could not be probed (the probe ${r.signal ? `was killed by ${r.signal}` : `exited ${r.status}`})`
}
