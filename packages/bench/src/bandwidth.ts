/**
 * The machine's memory bandwidth for reading, measured in the run that uses it: a STREAM-style sum over an
 * array far larger than the caches, once in plain JS (one thread) and once through ONNX Runtime (ReduceSum
 * on the run's threads), median of several passes each; the better of the two is the bound a decode step
 * is measured against (a step must read every weight and the whole KV cache once).
 */
import { Graph, hostTensor, ops, type Provider, Session } from '@moas/tensor-core'
import { nowMs, summarize } from './stats'

export interface Bandwidth {
  /** GB/s (10⁹ bytes) read by each kernel, and the better of them. */
  jsGBps: number
  ortGBps: number
  GBps: number
  /** Bytes each pass read. */
  bytes: number
}

export async function measureReadBandwidth(opts: { threads: number; provider?: Provider; mib?: number; reps?: number }): Promise<Bandwidth> {
  const n = ((opts.mib ?? 256) * 2 ** 20) / 4
  const data = new Float32Array(n)
  for (let i = 0; i < n; i += 1024) data[i] = 1 // touch every page before timing
  const reps = opts.reps ?? 5
  const bytes = n * 4
  const js: number[] = []
  let sink = 0
  for (let r = 0; r <= reps; r++) {
    const t0 = nowMs()
    let s0 = 0
    let s1 = 0
    let s2 = 0
    let s3 = 0
    for (let i = 0; i < n; i += 4) {
      s0 += data[i]
      s1 += data[i + 1]
      s2 += data[i + 2]
      s3 += data[i + 3]
    }
    sink += s0 + s1 + s2 + s3
    if (r > 0) js.push(nowMs() - t0)
  }
  if (sink !== (reps + 1) * (n / 1024)) throw new Error('measureReadBandwidth: the JS sum is wrong') // keeps the loop live
  const g = new Graph('read-bandwidth')
  g.output('sum', ops.reduceSum(g.input('x', 'float32', [n]), [0]))
  const session = await Session.create(g, { threads: opts.threads, provider: opts.provider })
  const ort: number[] = []
  const feed = { x: hostTensor('float32', [n], data) }
  try {
    for (let r = 0; r <= reps; r++) {
      const t0 = nowMs()
      await session.run(feed)
      if (r > 0) ort.push(nowMs() - t0)
    }
  } finally {
    await session.release()
  }
  const gbps = (ms: number[]) => bytes / (summarize(ms).median / 1000) / 1e9
  const [jsGBps, ortGBps] = [gbps(js), gbps(ort)]
  return { jsGBps, ortGBps, GBps: Math.max(jsGBps, ortGBps), bytes }
}
