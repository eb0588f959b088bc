/**
 * Test helpers (not exported from the package): seeded random data and a float64 finite-difference
 * gradient check. Replace with tensor-core's gradcheck once it lands.
 */
import { type Graph, type HostTensor, Session, type Tensor, grad, hostTensor, mulberry32, normalSampler, ops } from '@moas/tensor-core'

export function randn(n: number, seed: number, std = 1): Float64Array {
  const normal = normalSampler(mulberry32(seed))
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) out[i] = normal() * std
  return out
}

export function randHost(dtype: 'float32' | 'float64', shape: number[], seed: number, std = 1): HostTensor {
  const data = randn(shape.reduce((a, b) => a * b, 1), seed, std)
  return hostTensor(dtype, shape, dtype === 'float32' ? Float32Array.from(data) : data)
}

/**
 * A scalar probe of `y`: Σ y·W with W a graph input `probe` of y's shape (symbolic dims allowed), fed
 * random values, so every output element carries its own weight in the loss.
 */
export function probe(y: Tensor): Tensor {
  const w = y.graph.input('probe', y.dtype, y.shape)
  return ops.reduceSum(ops.mul(y, w), [...y.shape.keys()])
}

export interface GradcheckResult {
  /** Largest |analytic − numeric| / max(1, |numeric|) over every checked element. */
  maxError: number
  checked: number
}

/**
 * Compares grad(loss, wrt) with central finite differences of `loss`. `build` makes the graph and returns
 * the scalar loss, the tensors to differentiate (graph inputs or params, float64) and optionally feeds. Checks every element
 * of each tensor up to `maxPerTensor` (then an evenly spaced subset).
 */
export async function gradcheck(
  build: () => { graph: Graph; loss: Tensor; wrt: Tensor[]; feeds?: Record<string, HostTensor> },
  givenFeeds: Record<string, HostTensor> = {},
  opts: { eps?: number; maxPerTensor?: number } = {},
): Promise<GradcheckResult> {
  const eps = opts.eps ?? 1e-6
  const maxPer = opts.maxPerTensor ?? 64
  const built = build()
  const { graph, loss, wrt } = built
  const feeds = { ...givenFeeds, ...built.feeds }
  graph.output('loss', loss)
  const grads = grad(loss, wrt)
  grads.forEach((g, i) => graph.output(`grad_${i}`, g))
  const session = await Session.create(graph)
  const base = await session.run(feeds)
  let maxError = 0
  let checked = 0
  for (const [i, t] of wrt.entries()) {
    const feed = feeds[t.name]
    if (!feed) throw new Error(`gradcheck: no feed for ${t.name}`)
    const analytic = base[`grad_${i}`].data as Float64Array
    const n = feed.data.length
    const step = Math.max(1, Math.floor(n / maxPer))
    for (let j = 0; j < n; j += step) {
      const data = feed.data as Float64Array
      const orig = data[j]
      data[j] = orig + eps
      const up = (await session.run(feeds, ['loss'])).loss.data[0] as number
      data[j] = orig - eps
      const down = (await session.run(feeds, ['loss'])).loss.data[0] as number
      data[j] = orig
      const numeric = (up - down) / (2 * eps)
      maxError = Math.max(maxError, Math.abs(analytic[j] - numeric) / Math.max(1, Math.abs(numeric)))
      checked++
    }
  }
  await session.release()
  return { maxError, checked }
}
