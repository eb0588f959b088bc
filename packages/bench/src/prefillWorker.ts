/**
 * One prefill measurement in a process of its own, so the peak resident memory it reports is this
 * measurement's alone (a process's peak only grows): `node dist/prefill-worker.js '<job json>'` prints one
 * JSON line (PrefillMeasurement). The prefill bench (prefill.ts) runs one per (length, variant, kernel).
 */
import { type AttentionKernel, causalAttention, composedAttention, memoryEfficientAttention, useAttentionKernel } from '@moas/attention-schemes'
import { type AttentionCall, buildGpt, type GptConfig, resolveConfig, variantSpec } from '@moas/gpt'
import { Graph, type HostTensor, hostTensor, initParams, liveNodes, ops, type Provider, randomNormal, Session, type Tensor } from '@moas/tensor-core'
import { type CandidateKernel, candidateKernel } from './attentionCandidates'
import { matmulFlops } from './flops'

export type { AttentionCall }

export interface PrefillModelShape {
  n_layer: number
  n_head: number
  n_kv_head: number
  n_embd: number
  vocab: number
}

export interface PrefillJob {
  variant: string
  T: number
  /** The two shipped kernels, or (part 'core' only) a measured candidate (attentionCandidates.ts). */
  kernel: 'memory-efficient' | 'composed' | CandidateKernel
  /** Tile size of the blocked candidates (default 512). */
  block?: number
  /** 'model': the whole forward (logits); 'core': the attention core alone, on random q, k, v. */
  part: 'model' | 'core'
  model: PrefillModelShape
  warmup: number
  reps: number
  threads: number
  provider: Provider
}

export interface PrefillMeasurement {
  ms: number[]
  /** FLOPs of the graph: GEMMs, and the causal attention pairs of GroupQueryAttention nodes (flops.ts). */
  gflop: number
  /** Resident memory once the graph and its weights exist in JS, before ONNX Runtime gets them (MiB). */
  rssBeforeMiB: number
  /** Peak resident memory of the process (MiB): getrusage's maxrss. */
  peakRssMiB: number
  /** Attention-core ops in the graph: GroupQueryAttention nodes and Softmax nodes (composed). */
  ops: { groupQueryAttention: number; softmax: number }
}

function kernelOf(job: Pick<PrefillJob, 'kernel' | 'block'>): AttentionKernel {
  if (job.kernel === 'memory-efficient') return memoryEfficientAttention
  if (job.kernel === 'composed') return composedAttention
  return candidateKernel(job.kernel, job.block)
}

/** The attention-core calls one layer of `variant` makes (the registry's), at the measured shape. */
export function coreCalls(variant: string, m: PrefillModelShape): AttentionCall[] {
  const cfg = prefillGptConfig(variant, m, 1)
  const calls = variantSpec(cfg.attention).coreCalls
  if (!calls) throw new Error(`prefill core: '${variant}' has no fixed attention-core layout (its calls depend on the routing); measure its whole model`)
  return calls(cfg)
}

/** The GPT config of a prefill measurement: `shape` at context length T, no bias, no dropout. */
export function prefillGptConfig(variant: string, shape: PrefillModelShape, T: number): GptConfig {
  const m = shape
  return resolveConfig({
    vocab_size: m.vocab,
    block_size: T,
    n_layer: m.n_layer,
    n_head: m.n_head,
    n_embd: m.n_embd,
    n_kv_head: m.n_kv_head,
    bias: false,
    dropout: 0,
    attention: variant,
  })
}

export function prefillModelGraph(job: Pick<PrefillJob, 'variant' | 'T' | 'model' | 'kernel' | 'block'>): {
  graph: Graph
  feeds: Record<string, HostTensor>
  params: Map<string, Float32Array | Float64Array>
} {
  const { model: m, T } = job
  const cfg = prefillGptConfig(job.variant, m, T)
  const g = new Graph(`prefill-${job.variant}-${T}`)
  const gpt = buildGpt(g, cfg, { batch: 1, seq: T, training: false, withTargets: false, attentionKernel: kernelOf(job) })
  g.output('logits', gpt.logits)
  const ids = Array.from({ length: T }, (_, i) => (i * 7919) % m.vocab)
  // Weights embedded as initializers, as an inference deployment would: ONNX Runtime packs each GEMM's
  // weight once at load instead of on every run.
  return { graph: g, feeds: { [gpt.idx.name]: hostTensor('int64', [1, T], ids) }, params: initParams(g, 1) }
}

/**
 * The attention core alone: `calls` on random q{i} [1, G, R, T, d] and one k, v [1, kvHeads, 1, T, d]
 * (kvHeads: the widest call not on KV head 0), outputs y{i}. The prefill sweep's core part and the
 * core-heads bench both time this graph.
 */
export function attentionCallsGraph(
  name: string,
  calls: AttentionCall[],
  T: number,
  d: number,
  kernel: AttentionKernel,
): { graph: Graph; feeds: Record<string, HostTensor> } {
  const g = new Graph(name)
  useAttentionKernel(g, kernel)
  const feeds: Record<string, HostTensor> = {}
  let seed = 1
  const input = (inputName: string, shape: number[]): Tensor => {
    feeds[inputName] = hostTensor(
      'float32',
      shape,
      randomNormal(
        shape.reduce((p, q) => p * q, 1),
        seed++,
        0.3,
      ),
    )
    return g.input(inputName, 'float32', shape)
  }
  const kvHeads = Math.max(...calls.filter((c) => !c.kvHead0).map((c) => c.G), 1)
  const k = input('k', [1, kvHeads, 1, T, d])
  const v = input('v', [1, kvHeads, 1, T, d])
  calls.forEach((c, i) => {
    const q = input(`q${i}`, [1, c.G, c.R, T, d])
    // KV head 0, or the first G heads for a call over fewer KV heads than the widest (MoAS's branches)
    const heads = c.kvHead0 ? 1 : c.G
    const [kc, vc] = heads === kvHeads ? [k, v] : [ops.slice(k, [0], [heads], [1]), ops.slice(v, [0], [heads], [1])]
    g.output(`y${i}`, causalAttention(q, kc, vc, { dropout: 0, training: false }))
  })
  return { graph: g, feeds }
}

const coreGraph = (job: PrefillJob) =>
  attentionCallsGraph(`core-${job.variant}-${job.T}`, coreCalls(job.variant, job.model), job.T, job.model.n_embd / job.model.n_head, kernelOf(job))

/** int64 scalars for the graph's data-dependent dims (moas-topk's routed token counts), as extra outputs. */
function exposeSymbolicDims(g: Graph): string[] {
  const seen = new Map<string, Tensor>()
  for (const node of liveNodes(g))
    for (const t of [...node.inputs, ...node.outputs])
      t?.shape.forEach((d, axis) => {
        if (typeof d === 'string' && !seen.has(d)) seen.set(d, ops.dimOf(t, axis))
      })
  for (const [name, t] of seen) g.output(`dim:${name}`, t)
  return [...seen.keys()]
}

export async function measurePrefill(job: PrefillJob): Promise<PrefillMeasurement> {
  const built = job.part === 'model' ? prefillModelGraph(job) : { ...coreGraph(job), params: undefined }
  const g = built.graph
  const symbolic = exposeSymbolicDims(g)
  const rssBeforeMiB = process.memoryUsage().rss / 2 ** 20
  const session = await Session.create(g, { threads: job.threads, provider: job.provider, params: built.params })
  const first = await session.run(built.feeds)
  const dims = Object.fromEntries(symbolic.map((name) => [name, Number((first[`dim:${name}`].data as BigInt64Array)[0])]))
  for (let i = 1; i < job.warmup; i++) await session.run(built.feeds)
  const ms: number[] = []
  for (let i = 0; i < job.reps; i++) {
    const t0 = performance.now()
    await session.run(built.feeds)
    ms.push(performance.now() - t0)
  }
  await session.release()
  return {
    ms,
    gflop: matmulFlops(g, dims) / 1e9,
    rssBeforeMiB,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    ops: { groupQueryAttention: g.nodes.filter((n) => n.op === 'GroupQueryAttention').length, softmax: g.nodes.filter((n) => n.op === 'Softmax').length },
  }
}

if (process.argv[1] && /prefill-worker\.[cm]?js$/.test(process.argv[1])) {
  const job = JSON.parse(process.argv[2]) as PrefillJob
  process.env.MOAS_THREADS = String(job.threads)
  measurePrefill(job).then(
    (m) => process.stdout.write(`${JSON.stringify(m)}\n`),
    (e) => {
      process.stderr.write(`${(e as Error).message}\n`)
      process.exit(1)
    },
  )
}
