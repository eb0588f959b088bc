/**
 * Test helpers (the `@moas/gpt/testing` subpath): random weights at a scale where every path matters,
 * feeds, one-call model runs and error norms.
 */
import { type Dim, Graph, type HostTensor, hostTensor, Mulberry32, mulberry32, normalSampler, Session } from '@moas/tensor-core'
import type { GptConfig } from '../config'
import { type BuildOptions, buildGpt, type GptGraph } from '../model'

export const toNumbers = (a: ArrayLike<number | bigint>) => Array.from(a as ArrayLike<number>, Number)

/** ‖a − b‖ / ‖b‖ (norm-wise relative error). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`)
  let num = 0
  let den = 0
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2
    den += b[i] ** 2
  }
  return Math.sqrt(num) / Math.sqrt(den)
}

/** max |a − b| / max |b| (element-wise check scaled by the reference's magnitude). */
export function maxAbsErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0
  let den = 0
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]))
    den = Math.max(den, Math.abs(b[i]))
  }
  return num / den
}

/** A deterministic array of n token ids in [0, V). */
export function tokens(n: number, V: number, seed = 1): number[] {
  const rng = new Mulberry32(seed)
  return Array.from({ length: n }, () => rng.int(V))
}

/**
 * Random weights at a scale where every path matters numerically (the spec's N(0, 0.02) makes attention
 * nearly uniform): matrices N(0, 1/√fan_in), routers N(0, 0.5), LayerNorm weights 1 + 0.1·N, biases 0.05·N.
 */
export function randomWeights(graph: Graph, seed: number): Map<string, Float32Array | Float64Array> {
  const normal = normalSampler(mulberry32(seed))
  const out = new Map<string, Float32Array | Float64Array>()
  for (const p of graph.params) {
    const shape = p.tensor.shape as number[]
    const n = shape.reduce((a, b) => a * b, 1)
    const arr = p.tensor.dtype === 'float64' ? new Float64Array(n) : new Float32Array(n)
    const name = p.tensor.name
    const std = name.includes('.router')
      ? 0.5
      : shape.length === 2
        ? name.includes('wte') || name.includes('wpe')
          ? 0.5
          : 1 / Math.sqrt(shape[1])
        : p.init.kind === 'ones'
          ? 0.1
          : 0.05
    const mean = p.init.kind === 'ones' ? 1 : 0
    for (let i = 0; i < n; i++) arr[i] = mean + std * normal()
    out.set(name, arr)
  }
  return out
}

export function feedsOf(params: Map<string, Float32Array | Float64Array>, graph: Graph): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {}
  for (const p of graph.params) out[p.tensor.name] = hostTensor(p.tensor.dtype, p.tensor.shape as number[], params.get(p.tensor.name)!)
  return out
}

export const idxTensor = (ids: number[], B: number, T: number): HostTensor => hostTensor('int64', [B, T], ids)

/** Build `cfg`'s model with `opts`, run it on `ids` with `params`, return the named outputs. */
export async function runGpt(
  cfg: GptConfig,
  opts: Partial<BuildOptions> & { batch: number; seq: Dim },
  params: Map<string, Float32Array | Float64Array> | number,
  ids: number[],
  T: number,
  fetch: (m: GptGraph, g: Graph) => void = (m, g) => {
    g.output('logits', m.logits)
  },
): Promise<{ out: Record<string, HostTensor>; graph: Graph; params: Map<string, Float32Array | Float64Array> }> {
  const g = new Graph(cfg.attention)
  const m = buildGpt(g, cfg, { training: false, withTargets: false, ...opts })
  fetch(m, g)
  const weights = typeof params === 'number' ? randomWeights(g, params) : params
  const s = await Session.create(g)
  const out = await s.run({
    ...feedsOf(weights, g),
    idx: idxTensor(ids, opts.batch, T),
    ...(m.targets
      ? {
          targets: idxTensor(
            ids.map((t) => (t + 1) % cfg.vocab_size),
            opts.batch,
            T,
          ),
        }
      : {}),
  })
  await s.release()
  return { out, graph: g, params: weights }
}
