/**
 * What moving a tensor across the JS / ONNX Runtime boundary costs in onnxruntime-node (cpu), per run, for
 * a tensor the size of a long-context KV cache: why decode steps at long contexts cost more than their
 * kernels (`DecoderSession` feeds the cache as `past` and gets the grown cache back as `present` each step).
 * Four graphs over the same float32 input, interleaved run by run:
 * - in: y = ReduceSum(x), a scalar out (feeding the tensor and reading it once);
 * - kept: y = ReduceSum(x + 1), the same elementwise work as `out` with its result kept inside ONNX Runtime;
 * - out: y = x + 1, ONNX Runtime allocates y and the binding returns it in a new JS array;
 * - out-into: the same graph with y pre-allocated by the caller (onnxruntime-common's `fetches` with a tensor).
 * out − kept is what returning a cache-sized output costs; out-into shows whether pre-allocating helps.
 */
import { Graph, ops, serialize } from '@moas/tensor-core'
import { loadOrtNode } from './profile'
import { mdTable } from './report'
import { nowMs, summarize, type Timing } from './stats'

export interface OrtIoConfig {
  /** float32 elements of the tensor (default: the K and V of 2 layers × 16 heads × 8192 positions × 64). */
  elements: number
  warmup: number
  reps: number
  threads: number
}

export const ORT_IO_DEFAULTS: Omit<OrtIoConfig, 'threads'> = { elements: 4 * 16 * 8192 * 64, warmup: 2, reps: 9 }

export interface OrtIoResult {
  config: OrtIoConfig
  megabytes: number
  input: Timing
  kept: Timing
  output: Timing
  outputInto: Timing
}

export async function runOrtIo(cfg: OrtIoConfig, progress: (m: string) => void = () => {}): Promise<OrtIoResult> {
  const ort = loadOrtNode()
  const n = cfg.elements
  const build = (name: string, f: (g: Graph, x: ReturnType<Graph['input']>) => ReturnType<typeof ops.add>) => {
    const g = new Graph(name)
    g.output('y', f(g, g.input('x', 'float32', [n])))
    return serialize(g)
  }
  const opts = { executionProviders: ['cpu'], intraOpNumThreads: cfg.threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3 }
  const reduce = await ort.InferenceSession.create(
    build('in', (_, x) => ops.reduceSum(x, [0])),
    opts,
  )
  const kept = await ort.InferenceSession.create(
    build('kept', (g, x) => ops.reduceSum(ops.add(x, g.scalar(1, 'float32')), [0])),
    opts,
  )
  const add = await ort.InferenceSession.create(
    build('out', (g, x) => ops.add(x, g.scalar(1, 'float32'))),
    opts,
  )
  const data = new Float32Array(n).fill(1)
  const feeds = { x: new ort.Tensor('float32', data, [n]) }
  const into = new Float32Array(n)
  const samples = { input: [] as number[], kept: [] as number[], output: [] as number[], outputInto: [] as number[] }
  for (let r = 0; r < cfg.warmup + cfg.reps; r++) {
    const timed = r >= cfg.warmup
    let t0 = nowMs()
    await reduce.run(feeds)
    let t1 = nowMs()
    await kept.run(feeds)
    const t2 = nowMs()
    const out = (await add.run(feeds)) as Record<string, { data: Float32Array }>
    const t3 = nowMs()
    if (out.y.data[n - 1] !== 2) throw new Error('ort-io: the output is wrong')
    if (timed) {
      samples.input.push(t1 - t0)
      samples.kept.push(t2 - t1)
      samples.output.push(t3 - t2)
    }
    const pre = new ort.Tensor('float32', into, [n])
    t0 = nowMs()
    await add.run(feeds, { y: pre })
    t1 = nowMs()
    if (into[n - 1] !== 2) throw new Error('ort-io: the pre-allocated output was not written')
    into[n - 1] = 0
    if (timed) samples.outputInto.push(t1 - t0)
    progress(`${timed ? 'rep' : 'warmup'} ${timed ? r - cfg.warmup + 1 : r + 1}/${timed ? cfg.reps : cfg.warmup}`)
  }
  await reduce.release()
  await kept.release()
  await add.release()
  return {
    config: cfg,
    megabytes: (4 * n) / 2 ** 20,
    input: summarize(samples.input),
    kept: summarize(samples.kept),
    output: summarize(samples.output),
    outputInto: summarize(samples.outputInto),
  }
}

const cell = (t: Timing) => `${t.median.toFixed(1)} (${t.min.toFixed(1)}–${t.max.toFixed(1)})`

export function describeOrtIo(r: OrtIoResult): string {
  return [
    `ort-io: a float32 tensor of ${r.megabytes.toFixed(0)} MiB (${r.config.elements.toLocaleString('en-US')} elements) through onnxruntime-node (cpu); warmup ${r.config.warmup}, ${r.config.reps} interleaved runs; ms, median (min–max)`,
    `  in:        y = ReduceSum(x)                     ${cell(r.input)}`,
    `  kept:      y = ReduceSum(x + 1)                 ${cell(r.kept)}`,
    `  out:       y = x + 1, y allocated by ORT        ${cell(r.output)}`,
    `  out-into:  y = x + 1, y pre-allocated by JS     ${cell(r.outputInto)}`,
    `  returning the tensor costs ~${(r.output.median - r.kept.median).toFixed(0)} ms (out − kept); pre-allocating the output: ${r.outputInto.median - r.output.median >= 0 ? '+' : ''}${(r.outputInto.median - r.output.median).toFixed(0)} ms`,
  ].join('\n')
}

export function ortIoMarkdown(r: OrtIoResult): string {
  return [
    `A float32 tensor of ${r.megabytes.toFixed(0)} MiB (the K and V of 2 layers × 16 heads × 8192 positions × 64 by default: a long-context KV cache) through onnxruntime-node's cpu provider; warmup ${r.config.warmup}, ${r.config.reps} interleaved runs; ms, median (min–max).`,
    '',
    mdTable(
      ['graph', 'ms'],
      [
        ['in: y = ReduceSum(x) (the tensor fed, a scalar out)', cell(r.input)],
        ['kept: y = ReduceSum(x + 1) (the same elementwise work, its result kept inside ONNX Runtime)', cell(r.kept)],
        ['out: y = x + 1, y allocated by ONNX Runtime and returned', cell(r.output)],
        ['out-into: y = x + 1, y pre-allocated by the caller (fetches)', cell(r.outputInto)],
      ],
    ),
    '',
    `Returning the tensor costs ~${(r.output.median - r.kept.median).toFixed(0)} ms (out − kept); pre-allocating the output changes that by ${(r.outputInto.median - r.output.median).toFixed(0)} ms.`,
  ].join('\n')
}
