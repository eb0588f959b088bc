// onnxruntime-node segfaults in InferenceSession.create when the process's arguments are long.
// Usage: node repro.mjs <characters>   e.g. 20000 (works) and 30000 (SIGSEGV with onnxruntime-node 1.30.0, Linux x64)
// The argument is only padding: nothing reads it. Standalone: needs onnxruntime-node alone.

import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import * as ort from 'onnxruntime-node'

if (process.argv[2] === 'child') {
  const session = await ort.InferenceSession.create(fileURLToPath(new URL('./neg.onnx', import.meta.url)))
  const { y } = await session.run({ x: new ort.Tensor('float32', new Float32Array([1, -2]), [2]) })
  console.log(`ok: ${[...y.data].join(', ')}`)
} else {
  const n = Number(process.argv[2] ?? 30000)
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), 'child', 'a'.repeat(n)], { encoding: 'utf8' })
  console.log(`argument of ${n} characters: exit ${r.status ?? r.signal} ${r.stdout.trim()} ${r.stderr.trim().split('\n')[0] ?? ''}`)
}
