/**
 * Where a graph's time goes: run it under ONNX Runtime's profiler and sum kernel time per op type (and per
 * node), and write the optimized graph to see what was fused. tensor-core's Session does not expose the
 * profiler, so this opens onnxruntime-node directly (resolved through tensor-core, which depends on it).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Graph, type HostTensor, hostTensor, initParams, Mulberry32, randomNormal, serialize } from '@moas/tensor-core'
import { tensorCoreRequire } from './machine'
import { type OnnxNode, opCounts, readOnnxGraph } from './onnxInspect'

export interface ProfileRow {
  key: string
  ms: number
  calls: number
}

export interface GraphProfile {
  runs: number
  /** Mean wall time of one profiled run, ms. */
  runMs: number
  /** Kernel time per op type, ms per run, largest first. */
  byOp: ProfileRow[]
  /** Kernel time per node, ms per run, largest first. */
  byNode: ProfileRow[]
  /** Kernel time per scope and op type, ms per run, largest first. */
  byScope: ProfileRow[]
  /** Op counts of the graph after ONNX Runtime's optimizations. */
  optimizedOps: Record<string, number>
  optimizedNodes: OnnxNode[]
}

/** The slice of onnxruntime-node's API used here (bench does not depend on it directly, so no types). */
export interface OrtSession {
  run(feeds: Record<string, unknown>, fetches?: Record<string, unknown>): Promise<unknown>
  endProfiling(): void
  release(): Promise<void>
}
export interface OrtNode {
  Tensor: new (type: string, data: unknown, dims: number[]) => unknown
  InferenceSession: { create(bytes: Uint8Array, opts: Record<string, unknown>): Promise<OrtSession> }
}

/** onnxruntime-node itself (the copy tensor-core resolves), for what tensor-core's Session does not expose. */
export function loadOrtNode(): OrtNode {
  return tensorCoreRequire()('onnxruntime-node') as OrtNode
}

/** ONNX Runtime's per-kernel profile of `graph` over `opts.runs` runs; `params` are embedded as initializers (not fed). */
export async function profileGraph(
  graph: Graph,
  feeds: Record<string, HostTensor>,
  opts: { threads: number; runs: number; warmup?: number; params?: Map<string, Float32Array | Float64Array> },
): Promise<GraphProfile> {
  const ort = loadOrtNode()
  const dir = mkdtempSync(join(tmpdir(), 'moas-profile-'))
  try {
    const optimized = join(dir, 'optimized.onnx')
    const common = { executionProviders: ['cpu'], intraOpNumThreads: opts.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3 }
    const bytes = serialize(graph, { params: opts.params })
    // The first runs grow the memory arena; they are profiled too but left out of the figures.
    const ortFeeds = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.dtype, t.data, t.shape as number[])]))
    const session = await ort.InferenceSession.create(bytes, {
      ...common,
      enableProfiling: true,
      profileFilePrefix: join(dir, 'trace'),
      optimizedModelFilePath: optimized,
    })
    for (let i = 0; i < (opts.warmup ?? 1); i++) await session.run(ortFeeds)
    const t0 = performance.now()
    for (let i = 0; i < opts.runs; i++) await session.run(ortFeeds)
    const runMs = (performance.now() - t0) / opts.runs
    session.endProfiling()
    await session.release()
    const trace = readdirSync(dir).find((f) => f.startsWith('trace') && f.endsWith('.json'))
    if (!trace) throw new Error(`profileGraph: ONNX Runtime wrote no profile into ${dir}`)
    const events = JSON.parse(readFileSync(join(dir, trace), 'utf8')) as { cat: string; name: string; ts: number; dur: number; args?: { op_name?: string } }[]
    // Count only the timed runs: kernel events after the end of the last warm-up run.
    const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').sort((a, b) => a.ts - b.ts)
    const warm = opts.warmup ?? 1
    if (runs.length !== opts.runs + warm) throw new Error(`profileGraph: expected ${opts.runs + warm} model_run events in the profile, found ${runs.length}`)
    const cutoff = runs[warm - 1].ts + runs[warm - 1].dur
    const kernel = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.ts >= cutoff)
    const sum = (key: (e: (typeof kernel)[number]) => string): ProfileRow[] => {
      const m = new Map<string, ProfileRow>()
      for (const e of kernel) {
        const k = key(e)
        const row = m.get(k) ?? { key: k, ms: 0, calls: 0 }
        row.ms += e.dur / 1000 / opts.runs
        row.calls += 1 / opts.runs
        m.set(k, row)
      }
      return [...m.values()].sort((a, b) => b.ms - a.ms)
    }
    const nodeName = (e: (typeof kernel)[number]) => e.name.replace(/_kernel_time$/, '')
    const opt = readOnnxGraph(readFileSync(optimized))
    return {
      runs: opts.runs,
      runMs,
      byOp: sum((e) => e.args?.op_name ?? '?'),
      byNode: sum(nodeName),
      // The node's scope path with layer numbers folded (grad/block3.Gelu → grad/block*.Gelu): which part of
      // the model (forward, which backward rule, optimizer) the time goes to.
      byScope: sum((e) => `${nodeName(e).split('/').slice(0, -1).join('/').replace(/\d+/g, '*') || '(top)'} ${e.args?.op_name ?? ''}`),
      optimizedOps: opCounts(opt.nodes),
      optimizedNodes: opt.nodes,
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Feeds for any graph, to profile it without the code that normally drives it: parameters from their
 * declared init, int64 inputs uniform in [0, intBound) (token ids), dropout keep masks at each site's rate,
 * float scalars 1 (learning rate, bias corrections), other float inputs N(0, 0.02²) (Adam moments, data).
 */
export function syntheticFeeds(graph: Graph, intBound: number, seed = 1): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {}
  const rng = new Mulberry32(seed)
  const init = initParams(graph, seed)
  for (const { tensor } of graph.params) feeds[tensor.name] = hostTensor(tensor.dtype, tensor.shape as number[], init.get(tensor.name)!)
  const thresholds = new Map(graph.dropoutMasks.map((m) => [m.input.name, m.threshold]))
  for (const t of graph.inputs) {
    const shape = t.shape.map((d) => {
      if (typeof d !== 'number') throw new Error(`syntheticFeeds: input '${t.name}' has the symbolic dim '${d}'; build the graph with static sizes`)
      return d
    })
    const n = shape.reduce((a, b) => a * b, 1)
    if (t.dtype === 'int64')
      feeds[t.name] = hostTensor(
        'int64',
        shape,
        BigInt64Array.from({ length: n }, () => BigInt(rng.int(intBound))),
      )
    else if (thresholds.has(t.name))
      feeds[t.name] = hostTensor(
        'bool',
        shape,
        Uint8Array.from({ length: n }, () => (rng.int(65536) >= thresholds.get(t.name)! ? 1 : 0)),
      )
    else if (t.dtype === 'float32') feeds[t.name] = hostTensor('float32', shape, n === 1 ? [1] : randomNormal(n, rng.nextU32(), 0.02))
    else throw new Error(`syntheticFeeds: input '${t.name}' has dtype ${t.dtype}, which this helper does not fill`)
  }
  return feeds
}

export function formatProfile(p: GraphProfile, topNodes = 12): string {
  const kernelMs = p.byOp.reduce((a, r) => a + r.ms, 0)
  const lines = [`  one run: ${p.runMs.toFixed(1)} ms wall, ${kernelMs.toFixed(1)} ms in kernels (the rest: session overhead and output copies)`]
  lines.push('  by op type (ms per run, % of kernel time, nodes):')
  for (const r of p.byOp)
    lines.push(`    ${r.key.padEnd(22)} ${r.ms.toFixed(2).padStart(8)}  ${((100 * r.ms) / kernelMs).toFixed(1).padStart(5)}%  ${Math.round(r.calls)}`)
  lines.push('  by scope and op type (ms per run, nodes):')
  for (const r of p.byScope.slice(0, topNodes)) lines.push(`    ${r.ms.toFixed(2).padStart(8)} ms  ${String(Math.round(r.calls)).padStart(3)}  ${r.key}`)
  lines.push(
    `  optimized graph: ${Object.entries(p.optimizedOps)
      .map(([k, v]) => `${k}×${v}`)
      .join(' ')}`,
  )
  return lines.join('\n')
}
