/**
 * `pnpm bench --bench attention-core`: every attention-core candidate of issue 9 alone, at GQE's main
 * setting (16 query heads, 8 KV heads, head size 64, batch 1, random q, k, v), in gqa's layout and in
 * gqe's (8 one-head slots plus the shared head): the two kernels @moas/attention-schemes ships (composed;
 * memory-efficient = GroupQueryAttention's tiled path) and the measured-only candidates of
 * attentionCandidates.ts. Each measurement runs in a process of its own (the prefill worker), so its peak
 * resident memory is its own; the candidates rotate within each length. This is the measurement behind
 * the kernel choice in docs/performance.md.
 */
import { CANDIDATE_KERNELS, type CandidateKernel } from './attentionCandidates'
import { PREFILL_DEFAULTS, PREFILL_WORKER, runPrefillWorker } from './prefill'
import type { PrefillJob, PrefillModelShape } from './prefillWorker'
import { mdTable } from './report'
import { summarize, type Timing } from './stats'

export type CoreKernel = 'memory-efficient' | 'composed' | CandidateKernel
export const CORE_KERNELS: readonly CoreKernel[] = ['memory-efficient', 'composed', ...CANDIDATE_KERNELS]

/** What each kernel is, for the tables. */
export const CORE_KERNEL_LABELS: Record<CoreKernel, string> = {
  'memory-efficient': 'GroupQueryAttention, present outputs wired: tiled path (shipped, memoryEfficientAttention)',
  composed: 'composed MatMul + mask + Softmax + MatMul (shipped, composedAttention)',
  'gqa-naive': 'GroupQueryAttention, no present outputs: one-GEMM path',
  'onnx-attention': 'ONNX opset-23 Attention, is_causal',
  'query-blocked': 'standard ops, query blocks against the keys up to their diagonal',
  'tiled-online': 'standard ops, query × key tiles, online softmax',
}

/**
 * Kernels that hold every head's [T, T] scores at once, and their peak over those scores' bytes (measured:
 * composed 4.5 at 4k; the one-GEMM GroupQueryAttention 1.1 and opset-23 Attention 2.1 at 8k; rounded up).
 */
const MATERIALIZES: Partial<Record<CoreKernel, number>> = { composed: 4.5, 'gqa-naive': 2, 'onnx-attention': 2 }

export interface AttentionCoreConfig {
  lengths: number[]
  kernels: CoreKernel[]
  layouts: ('gqa' | 'gqe')[]
  /** Tile size of the blocked candidates. */
  block: number
  warmup: number
  reps: number
  /** Skip a kernel that holds all scores when its estimated peak exceeds this (GiB). */
  maxEstimatedGiB: number
  model: PrefillModelShape
  threads: number
  provider: PrefillJob['provider']
}

export const ATTENTION_CORE_DEFAULTS: Omit<AttentionCoreConfig, 'threads' | 'provider'> = {
  lengths: [1024, 2048, 4096, 8192, 16384],
  kernels: [...CORE_KERNELS],
  layouts: ['gqa', 'gqe'],
  block: 512,
  warmup: 1,
  reps: 5,
  maxEstimatedGiB: 10,
  model: PREFILL_DEFAULTS.settings.gqe,
}

export interface AttentionCoreRow {
  T: number
  kernel: CoreKernel
  layout: 'gqa' | 'gqe'
  run?: Timing
  peakRssMiB?: number
  /** The memory-efficient kernel's median at this length and layout over this one's (> 1: faster). */
  vsShipped?: number
  /** gqa's median over gqe's for this kernel at this length (the speed-up GQE gets with it). */
  gqeSpeedup?: number
  skipped?: string
  error?: string
}

export interface AttentionCoreResult {
  config: AttentionCoreConfig
  rows: AttentionCoreRow[]
}

const scoresGiB = (m: PrefillModelShape, T: number) => (4 * m.n_head * T * T) / 2 ** 30

export async function runAttentionCore(cfg: AttentionCoreConfig, log: (msg: string) => void = () => {}, worker = PREFILL_WORKER): Promise<AttentionCoreResult> {
  const rows: AttentionCoreRow[] = []
  const total = cfg.lengths.length * cfg.kernels.length * cfg.layouts.length
  for (const T of cfg.lengths)
    for (const layout of cfg.layouts)
      for (const kernel of cfg.kernels) {
        const row: AttentionCoreRow = { T, kernel, layout }
        const estimate = (MATERIALIZES[kernel] ?? 0) * scoresGiB(cfg.model, T)
        const blocked = kernel === 'query-blocked' || kernel === 'tiled-online'
        if (estimate > cfg.maxEstimatedGiB)
          row.skipped = `holds every head's scores: ~${estimate.toFixed(0)} GiB estimated peak, over the ${cfg.maxEstimatedGiB} GiB limit`
        else if (blocked && T % cfg.block) row.skipped = `T is not a multiple of the block (${cfg.block})`
        else {
          const job: PrefillJob = {
            variant: layout,
            T,
            kernel,
            block: cfg.block,
            part: 'core',
            model: cfg.model,
            warmup: cfg.warmup,
            reps: cfg.reps,
            threads: cfg.threads,
            provider: cfg.provider,
          }
          try {
            const m = await runPrefillWorker(job, worker)
            row.run = summarize(m.ms)
            row.peakRssMiB = m.peakRssMiB
          } catch (err) {
            row.error = (err as Error).message
          }
        }
        rows.push(row)
        const what = row.run
          ? `${row.run.median.toFixed(1)} ms, peak ${(row.peakRssMiB! / 1024).toFixed(2)} GiB`
          : row.skipped
            ? 'skipped'
            : `failed: ${row.error}`
        log(`${rows.length}/${total} T=${T} ${layout} ${kernel}: ${what}`)
      }
  for (const r of rows) {
    const shipped = rows.find((b) => b.T === r.T && b.layout === r.layout && b.kernel === 'memory-efficient')
    if (shipped?.run && r.run) r.vsShipped = shipped.run.median / r.run.median
    const gqa = rows.find((b) => b.T === r.T && b.kernel === r.kernel && b.layout === 'gqa')
    if (r.layout === 'gqe' && gqa?.run && r.run) r.gqeSpeedup = gqa.run.median / r.run.median
  }
  return { config: cfg, rows }
}

const kLabel = (T: number) => (T >= 1024 ? `${T / 1024}k` : String(T))
const cellOf = (r: AttentionCoreRow | undefined) =>
  !r ? '–' : r.run ? `${r.run.median.toFixed(1)} ms, ${(r.peakRssMiB! / 1024).toFixed(2)} GiB` : r.skipped ? 'skipped' : 'failed'

function tableRows(res: AttentionCoreResult, layout: 'gqa' | 'gqe'): string[][] {
  return res.config.kernels.map((k) => [
    k,
    ...res.config.lengths.map((T) => {
      const r = res.rows.find((x) => x.T === T && x.kernel === k && x.layout === layout)
      const rel = r?.vsShipped !== undefined && k !== 'memory-efficient' ? ` (${(1 / r.vsShipped).toFixed(2)}× the tiled GQA time)` : ''
      const sp = layout === 'gqe' && r?.gqeSpeedup !== undefined ? `; gqe ${r.gqeSpeedup.toFixed(2)}×` : ''
      return `${cellOf(r)}${rel}${sp}`
    }),
  ])
}

function notes(res: AttentionCoreResult): string[] {
  return res.rows.filter((r) => r.skipped || r.error).map((r) => `${kLabel(r.T)} ${r.layout} ${r.kernel}: ${r.skipped ?? `failed: ${r.error}`}`)
}

function setting(c: AttentionCoreConfig): string {
  return `${c.model.n_head} query heads, ${c.model.n_kv_head} KV heads, head size ${c.model.n_embd / c.model.n_head}, batch 1, float32; gqa: 8 groups × 2 query heads; gqe: 8 one-head slots plus the shared head (9 of 16 heads attend, FLOP ceiling 16/9 = 1.78×); blocked candidates' tile ${c.block}; warmup ${c.warmup}, median of ${c.reps}, one process per cell (peak = that process's maximum resident memory)`
}

export function describeAttentionCore(res: AttentionCoreResult): string {
  const c = res.config
  const lines = [`attention-core: ${setting(c)}`]
  for (const layout of c.layouts) {
    lines.push(`  ${layout} layout: ms median, peak resident memory`)
    for (const [k, ...cells] of tableRows(res, layout)) lines.push(`    ${k.padEnd(17)} ${cells.map((x, i) => `${kLabel(c.lengths[i])}: ${x}`).join(' | ')}`)
  }
  for (const n of notes(res)) lines.push(`  ${n}`)
  return lines.join('\n')
}

export function attentionCoreMarkdown(res: AttentionCoreResult): string {
  const c = res.config
  const header = ['kernel', ...c.lengths.map((T) => `T = ${kLabel(T)}`)]
  const out = [`The attention core alone: ${setting(c)}.`, '', ...c.kernels.map((k) => `- \`${k}\`: ${CORE_KERNEL_LABELS[k]}`), '']
  for (const layout of c.layouts)
    out.push(
      `**${layout} layout** (median ms, peak resident memory${layout === 'gqe' ? '; gqe: gqa time over gqe time with the same kernel' : ''})`,
      '',
      mdTable(header, tableRows(res, layout)),
      '',
    )
  const n = notes(res)
  if (n.length) out.push(...n.map((x) => `- ${x}`))
  return out.join('\n')
}
