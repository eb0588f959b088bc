/**
 * `pnpm bench --bench core-heads`: how the shipped memory-efficient attention core (GroupQueryAttention's
 * tiled path) scales with the query heads of one call, at one thread and at the run's threads. It is the
 * measurement behind the reason GQE's attention core gains less than its 16/9 FLOP ceiling over gqa on
 * this 2-core machine (docs/performance.md): ONNX Runtime shares a call's work among its threads by
 * (batch × query head), so a 9-head call splits unevenly over 2 threads and a 1-head call (GQE's shared
 * head) runs on one, while gqa's 16 heads split evenly and each KV head serves two of them.
 *
 * Layouts (q, k, v random; batch 1; head size 64), all timed in one process, interleaved run by run:
 * n heads on n KV heads for n = 8, 9, 16; gqa (16 on 8); gqe (8 slots on 8 KV heads, then the shared head
 * on KV head 0: the two calls the GQE layer makes). Head-times are a call's time over 1/8 of the 8-head
 * call's at the same thread count; gqa ÷ gqe is the core speed-up the prefill sweep measures.
 */
import { memoryEfficientAttention } from '@moas/attention-schemes'
import { queryHeadsPerToken, resolveConfig, VARIANT_TABLE, type Variant } from '@moas/gpt'
import { type Graph, type HostTensor, type Provider, Session } from '@moas/tensor-core'
import { PAPER_VOCAB } from './paper'
import { type AttentionCall, attentionCallsGraph } from './prefillWorker'
import { mdTable } from './report'
import { nowMs, summarize, type Timing } from './stats'

export interface CoreHeadsLayout {
  name: string
  about: string
  /** Query heads that attend (over every call). */
  queryHeads: number
  calls: AttentionCall[]
}

/** A variant's layer at GQE's main setting, as the registry says it calls the core. */
function registryLayout(variant: Variant, about: string): CoreHeadsLayout {
  const cfg = resolveConfig({ vocab_size: PAPER_VOCAB, attention: variant }, 'gqe-main')
  return { name: variant, about, queryHeads: queryHeadsPerToken(cfg), calls: VARIANT_TABLE[variant].coreCalls!(cfg) }
}

export const CORE_HEADS_LAYOUTS: readonly CoreHeadsLayout[] = [
  { name: 'heads-8', about: '8 heads on 8 KV heads, one call (the unit)', queryHeads: 8, calls: [{ G: 8, R: 1 }] },
  { name: 'heads-9', about: '9 heads on 9 KV heads, one call', queryHeads: 9, calls: [{ G: 9, R: 1 }] },
  { name: 'heads-16', about: '16 heads on 16 KV heads, one call', queryHeads: 16, calls: [{ G: 16, R: 1 }] },
  registryLayout('gqa', 'gqa: 16 heads on 8 KV heads, one call'),
  registryLayout('gqe', 'gqe: 8 slots on 8 KV heads, then the shared head on KV head 0 (two calls)'),
  { name: 'shared', about: "gqe's shared head alone: 1 head on KV head 0, one call", queryHeads: 1, calls: [{ G: 1, R: 1, kvHead0: true }] },
]

export interface CoreHeadsConfig {
  lengths: number[]
  headDim: number
  warmup: number
  reps: number
  /** The thread counts compared (default 1 and the run's). */
  threads: number[]
  provider: Provider
}

export const CORE_HEADS_DEFAULTS: Omit<CoreHeadsConfig, 'threads' | 'provider'> = { lengths: [4096, 8192], headDim: 64, warmup: 1, reps: 15 }

export interface CoreHeadsRow {
  T: number
  threads: number
  layout: string
  queryHeads: number
  run: Timing
  /** This layout's median over 1/8 of heads-8's at the same T and threads. */
  headTimes: number
  /** GroupQueryAttention nodes in its graph (one per call: the shipped kernel took every call). */
  gqaNodes: number
}

export interface CoreHeadsResult {
  config: CoreHeadsConfig
  rows: CoreHeadsRow[]
  /** gqa's median over gqe's per T and thread count. */
  speedups: { T: number; threads: number; gqaOverGqe: number }[]
}

/** The graph of one layout at length T: inputs q{i}, k, v; outputs y{i}. */
export function coreHeadsGraph(layout: CoreHeadsLayout, T: number, d: number): { graph: Graph; feeds: Record<string, HostTensor> } {
  return attentionCallsGraph(`core-heads-${layout.name}-${T}`, layout.calls, T, d, memoryEfficientAttention)
}

export async function runCoreHeads(cfg: CoreHeadsConfig, progress: (m: string) => void = () => {}): Promise<CoreHeadsResult> {
  const rows: CoreHeadsRow[] = []
  const speedups: CoreHeadsResult['speedups'] = []
  for (const T of cfg.lengths) {
    for (const threads of cfg.threads) {
      const built = await Promise.all(
        CORE_HEADS_LAYOUTS.map(async (layout) => {
          const { graph, feeds } = coreHeadsGraph(layout, T, cfg.headDim)
          const session = await Session.create(graph, { threads, provider: cfg.provider })
          return { layout, session, feeds, gqaNodes: graph.nodes.filter((n) => n.op === 'GroupQueryAttention').length, ms: [] as number[] }
        }),
      )
      for (let r = 0; r < cfg.warmup + cfg.reps; r++) {
        for (const b of built) {
          const t0 = nowMs()
          await b.session.run(b.feeds)
          if (r >= cfg.warmup) b.ms.push(nowMs() - t0)
        }
        progress(`T=${T} threads ${threads}: ${r < cfg.warmup ? `warmup ${r + 1}/${cfg.warmup}` : `rep ${r - cfg.warmup + 1}/${cfg.reps}`}`)
      }
      for (const b of built) await b.session.release()
      const unit = summarize(built[0].ms).median / 8
      for (const b of built) {
        const run = summarize(b.ms)
        rows.push({ T, threads, layout: b.layout.name, queryHeads: b.layout.queryHeads, run, headTimes: run.median / unit, gqaNodes: b.gqaNodes })
      }
      const median = (name: string) => rows.find((x) => x.T === T && x.threads === threads && x.layout === name)!.run.median
      speedups.push({ T, threads, gqaOverGqe: median('gqa') / median('gqe') })
    }
  }
  return { config: cfg, rows, speedups }
}

const len = (T: number) => (T >= 1024 ? `${T / 1024}k` : String(T))

function table(r: CoreHeadsResult): { header: string[]; body: string[][] } {
  const header = ['T', 'threads', 'layout', 'query heads', 'ms median (min–max)', 'head-times (heads-8 = 8)']
  const body = r.rows.map((x) => [
    len(x.T),
    String(x.threads),
    x.layout,
    String(x.queryHeads),
    `${x.run.median.toFixed(1)} (${x.run.min.toFixed(1)}–${x.run.max.toFixed(1)})`,
    x.headTimes.toFixed(2),
  ])
  return { header, body }
}

const speedupLine = (s: CoreHeadsResult['speedups'][number]) =>
  `${len(s.T)}, ${s.threads} thread${s.threads === 1 ? '' : 's'}: gqa ÷ gqe ${s.gqaOverGqe.toFixed(2)}× (FLOP ceiling 16/9 = 1.78×)`

export function describeCoreHeads(r: CoreHeadsResult): string {
  const { header, body } = table(r)
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)))
  const line = (cells: string[]) => `  ${cells.map((c, i) => c.padEnd(widths[i])).join('  ')}`
  return [
    `core-heads: the memory-efficient attention core (GroupQueryAttention, tiled) by query heads per call, head size ${r.config.headDim}, batch 1; warmup ${r.config.warmup}, ${r.config.reps} runs interleaved across layouts`,
    ...CORE_HEADS_LAYOUTS.map((l) => `  ${l.name.padEnd(8)} ${l.about}`),
    '',
    line(header),
    ...body.map(line),
    '',
    ...r.speedups.map((s) => `  ${speedupLine(s)}`),
  ].join('\n')
}

export function coreHeadsMarkdown(r: CoreHeadsResult): string {
  const { header, body } = table(r)
  return [
    `The shipped memory-efficient attention core (GroupQueryAttention's tiled path) by query heads per call; head size ${r.config.headDim}, batch 1, random q, k, v; warmup ${r.config.warmup}, median of ${r.config.reps} runs interleaved across layouts. Head-times: a layout's median over 1/8 of the 8-head call's at the same length and threads.`,
    '',
    mdTable(
      ['layout', 'what'],
      CORE_HEADS_LAYOUTS.map((l) => [l.name, l.about]),
    ),
    '',
    mdTable(header, body),
    '',
    ...r.speedups.map((s) => `- ${speedupLine(s)}`),
  ].join('\n')
}
