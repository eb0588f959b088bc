/**
 * Prefill (inference, no gradients): the forward pass of one sequence of T tokens, GQA against GQE at
 * GQE's main setting (16 query heads in 8 KV groups, M = 2 experts per group, top-1 plus the shared head)
 * scaled to this machine (2 layers, n_embd 1024, head size 64). GQE attends with G·k + 1 = 9 query heads
 * per token instead of 16, so its attention core does at most 16/9 ≈ 1.78× less work: that is the ceiling
 * of the attention-core speed-up; projections, MLP and the LM head cost the same in both, so the whole
 * forward gains less. The exact MatMul FLOP ratio of the two graphs is printed beside the measured ratio.
 */
import { type GptConfig, buildGpt, resolveConfig } from '@moas/gpt'
import { Graph, type HostTensor, Session, hostTensor, initParams } from '@moas/tensor-core'
import { matmulFlops } from './flops'
import type { Provider } from '@moas/tensor-core'
import { mdTable } from './report'
import { type Timing, nowMs, summarize } from './stats'

export interface PrefillConfig {
  /** ONNX Runtime execution provider (default cpu). */
  provider?: Provider
  lengths: number[]
  variants: string[]
  n_layer: number
  n_head: number
  n_kv_head: number
  n_embd: number
  vocab: number
  warmup: number
  reps: number
  threads: number
}

export const PREFILL_DEFAULTS: Omit<PrefillConfig, 'threads'> = {
  lengths: [256, 1024, 2048], variants: ['gqa', 'gqe'], n_layer: 2, n_head: 16, n_kv_head: 8, n_embd: 1024, vocab: 283, warmup: 2, reps: 7,
}

export interface PrefillRow {
  variant: string
  T: number
  gflop: number
  run: Timing
  tokensPerS: number
  /** gqa's median / this variant's median at the same T (speed-up; > 1 is faster). */
  speedupVsGqa: number | null
  /** gqa's MatMul FLOPs / this variant's: the speed-up the GEMM work alone would allow. */
  flopRatioVsGqa: number | null
}

export interface PrefillResult {
  config: PrefillConfig
  /** Attention-core ceiling of GQE over GQA: H / (G·k + 1). */
  attentionCeiling: number
  rows: PrefillRow[]
}

export function prefillModel(variant: string, cfg: Pick<PrefillConfig, 'n_layer' | 'n_head' | 'n_kv_head' | 'n_embd' | 'vocab' | 'lengths'>): GptConfig {
  return resolveConfig({
    vocab_size: cfg.vocab, block_size: Math.max(...cfg.lengths), n_layer: cfg.n_layer, n_head: cfg.n_head, n_embd: cfg.n_embd,
    n_kv_head: cfg.n_kv_head, bias: false, dropout: 0, attention: variant,
  })
}

/** A session for one variant at length T, its feeds, and its graph's MatMul FLOPs. */
async function prepare(variant: string, T: number, cfg: PrefillConfig) {
  const model = prefillModel(variant, cfg)
  const g = new Graph(`prefill-${variant}-${T}`)
  const m = buildGpt(g, model, { batch: 1, seq: T, training: false, withTargets: false })
  g.output('logits', m.logits)
  // Weights embedded as initializers, as an inference deployment would: ONNX Runtime then packs each GEMM's
  // weight once at load instead of on every run.
  const session = await Session.create(g, { threads: cfg.threads, provider: cfg.provider, params: initParams(g, 1) })
  const feeds: Record<string, HostTensor> = { [m.idx.name]: hostTensor('int64', [1, T], Array.from({ length: T }, (_, i) => (i * 7919) % cfg.vocab)) }
  return { variant, session, run: () => session.run(feeds), gflop: matmulFlops(g) / 1e9, gqeTopK: model.gqe_top_k, ms: [] as number[] }
}

export async function runPrefill(cfg: PrefillConfig, log: (msg: string) => void = () => {}): Promise<PrefillResult> {
  const rows: PrefillRow[] = []
  let topK = 1
  for (const T of cfg.lengths) {
    const runs = []
    for (const v of cfg.variants) runs.push(await prepare(v, T, cfg))
    for (const r of runs) for (let i = 0; i < cfg.warmup; i++) await r.run()
    // Interleaved, so every variant sees the same background load.
    for (let i = 0; i < cfg.reps; i++) {
      for (const r of runs) {
        const t0 = nowMs()
        await r.run()
        r.ms.push(nowMs() - t0)
      }
    }
    for (const r of runs) await r.session.release()
    const timed = runs.map((r) => ({ ...r, timing: summarize(r.ms) }))
    const gqa = timed.find((r) => r.variant === 'gqa')
    for (const r of timed) {
      if (r.gqeTopK) topK = r.gqeTopK
      log(`T=${T} ${r.variant}: ${r.timing.median.toFixed(1)} ms median of ${cfg.reps}`)
      rows.push({
        variant: r.variant, T, gflop: r.gflop, run: r.timing, tokensPerS: T / (r.timing.median / 1000),
        speedupVsGqa: gqa ? gqa.timing.median / r.timing.median : null,
        flopRatioVsGqa: gqa ? gqa.gflop / r.gflop : null,
      })
    }
  }
  return { config: cfg, attentionCeiling: cfg.n_head / (cfg.n_kv_head * topK + 1), rows }
}

const setting = (c: PrefillConfig) => `${c.n_layer} layers, ${c.n_head} query heads, ${c.n_kv_head} KV heads/groups, n_embd ${c.n_embd} (head size ${c.n_embd / c.n_head}), vocab ${c.vocab}, batch 1`

export function describePrefill(r: PrefillResult): string {
  const c = r.config
  const lines = [
    `prefill: forward of one sequence, no gradients; ${setting(c)}; warmup ${c.warmup}, median of ${c.reps}`,
    `  attention-core ceiling of GQE over GQA: H / (G·k + 1) = ${c.n_head} / ${(c.n_head / r.attentionCeiling).toFixed(0)} = ${r.attentionCeiling.toFixed(2)}×`,
    `  ${'T'.padStart(5)} ${'variant'.padEnd(8)} ${'ms'.padStart(8)} ${'min–max'.padStart(15)} ${'tokens/s'.padStart(9)} ${'GFLOP'.padStart(7)} ${'speed-up vs gqa'.padStart(16)} ${'FLOP ratio'.padStart(11)}`,
  ]
  for (const row of r.rows)
    lines.push(
      `  ${String(row.T).padStart(5)} ${row.variant.padEnd(8)} ${row.run.median.toFixed(1).padStart(8)} ${`${row.run.min.toFixed(1)}–${row.run.max.toFixed(1)}`.padStart(15)} ${row.tokensPerS.toFixed(0).padStart(9)} ${row.gflop.toFixed(1).padStart(7)} ${row.speedupVsGqa === null ? '-' : `${row.speedupVsGqa.toFixed(2)}×`.padStart(16)} ${row.flopRatioVsGqa === null ? '-' : `${row.flopRatioVsGqa.toFixed(2)}×`.padStart(11)}`,
    )
  return lines.join('\n')
}

export function prefillMarkdown(r: PrefillResult): string {
  const c = r.config
  return [
    `Forward of one sequence (no gradients); ${setting(c)}; warmup ${c.warmup}, median of ${c.reps}. Attention-core ceiling of GQE over GQA: ${r.attentionCeiling.toFixed(2)}×. "FLOP ratio" = gqa's MatMul FLOPs / the variant's (the speed-up the GEMM work alone allows).`,
    '',
    mdTable(['T', 'variant', 'ms median (min–max)', 'tokens/s', 'GFLOP', 'speed-up vs gqa', 'FLOP ratio'], r.rows.map((row) => [
      row.T, row.variant, `${row.run.median.toFixed(1)} (${row.run.min.toFixed(1)}–${row.run.max.toFixed(1)})`, row.tokensPerS.toFixed(0), row.gflop.toFixed(1),
      row.speedupVsGqa === null ? '-' : `${row.speedupVsGqa.toFixed(2)}×`, row.flopRatioVsGqa === null ? '-' : `${row.flopRatioVsGqa.toFixed(2)}×`,
    ])),
  ].join('\n')
}
