/**
 * Training-step speed per attention variant at the paper's config (batch 12 × 256 tokens, vocab 283,
 * 4 layers, 6 heads, 384 wide, dropout 0.1): the trainer's fused graph (forward + backward + AdamW, one
 * session.run), params and Adam moments fed and next.* fetched and fed back, as `moas train` does.
 *
 * FLOPs: the exact MatMul FLOPs of the training graph (matmulFlops walks graph.nodes: forward, backward
 * and router GEMMs of the variant as built, including the full T×T attention products the composed causal
 * attention computes). Elementwise work is not counted, so GFLOP/s reads as GEMM throughput.
 */
import { type GptConfig, kvCacheBytesPerToken, paramCounts } from '@moas/gpt'
import { PAPER_OPTIM, TrainingSession, Xoshiro128, initialParams } from '@moas/trainer'
import { matmulFlops } from './flops'
import { PAPER_VOCAB, TRAIN_VARIANTS, paperConfig } from './paper'
import type { Provider } from '@moas/tensor-core'
import { mdTable } from './report'
import { type Timing, nowMs, summarize } from './stats'

/** Goals of issue 4 (seconds per step on the 2-core machine), and the paper's PyTorch code there. */
export const TRAIN_GOALS: Record<string, { goal: number; pytorch: number }> = { mha: { goal: 0.6, pytorch: 1.7 }, moas: { goal: 0.9, pytorch: 8 } }

export interface TrainStepConfig {
  /** ONNX Runtime execution provider (default cpu). */
  provider?: Provider
  variants: string[]
  batch: number
  seq: number
  vocab: number
  warmup: number
  reps: number
  threads: number
}

export const TRAIN_STEP_DEFAULTS: Omit<TrainStepConfig, 'threads'> = { variants: [...TRAIN_VARIANTS], batch: 12, seq: 256, vocab: PAPER_VOCAB, warmup: 1, reps: 5 }

export interface TrainStepRow {
  variant: string
  params: number
  /** MatMul GFLOP of one training step (exact, from the graph). */
  gflop: number
  step: Timing
  tokensPerS: number
  gflops: number
  /** This variant's median ms / the median of the mha steps interleaved with it; null without mha. */
  vsMha: number | null
  kvBytesPerToken: number
  /** Session creation (graph build + serialization + ONNX Runtime optimization), ms. */
  setupMs: number
  /** Median ms the trainer spends per step drawing dropout noise in JS (not part of `step`). */
  noiseMs: number
  noiseValues: number
}

export interface TrainStepResult {
  config: TrainStepConfig
  model: Omit<GptConfig, 'attention'>
  rows: TrainStepRow[]
}

/** Uniform random token ids: their values do not change the work, they only need to be valid. */
function randomTokens(n: number, vocab: number, seed: number): BigInt64Array {
  const out = new BigInt64Array(n)
  let s = seed >>> 0
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    out[i] = BigInt(Math.floor((s / 4294967296) * vocab))
  }
  return out
}

/** The trainer's own TrainingSession for one variant: `step()` runs one fused update (next.* fed back inside). */
async function prepareVariant(variant: string, cfg: TrainStepConfig) {
  const model = paperConfig(variant, cfg.vocab)
  const t0 = nowMs()
  const session = await TrainingSession.create(model, { batch: cfg.batch, seq: cfg.seq, optim: PAPER_OPTIM, threads: cfg.threads, provider: cfg.provider }, { params: initialParams(model, 1), noise: new Xoshiro128(1) })
  const setupMs = nowMs() - t0
  const graph = session.graph
  const n = cfg.batch * cfg.seq
  const x = randomTokens(n, cfg.vocab, 1)
  const y = randomTokens(n, cfg.vocab, 2)
  const fill = (bx: BigInt64Array, by: BigInt64Array) => {
    bx.set(x)
    by.set(y)
  }
  // ms/step is the time inside session.run; the JS dropout-noise draw of the same update is timed apart.
  const noiseMs: number[] = []
  const ms: number[] = []
  const step = async (timed: boolean) => {
    const r = await session.update(3e-4, fill)
    if (!Number.isFinite(r.loss)) throw new Error(`train-step ${variant}: loss is ${r.loss} at step ${session.step}`)
    if (timed) {
      ms.push(session.lastTiming.runMs)
      noiseMs.push(session.lastTiming.noiseMs)
    }
  }
  for (let i = 0; i < cfg.warmup; i++) await step(false)
  const row = (samples: number[]): Omit<TrainStepRow, 'vsMha'> => {
    const timing = summarize(samples)
    const flops = matmulFlops(graph)
    return {
      variant, params: paramCounts(model).total, gflop: flops / 1e9, step: timing,
      tokensPerS: (cfg.batch * cfg.seq) / (timing.median / 1000), gflops: flops / 1e9 / (timing.median / 1000),
      kvBytesPerToken: kvCacheBytesPerToken(model), setupMs, noiseMs: summarize(noiseMs).median, noiseValues: session.noisePerPass,
    }
  }
  return { variant, step, ms, row, release: () => session.release() }
}

export async function runTrainStep(cfg: TrainStepConfig, log: (msg: string) => void = () => {}): Promise<TrainStepResult> {
  const rows: TrainStepRow[] = []
  // mha stays alive and alternates step by step with each other variant in turn, so every "vs mha" ratio
  // compares runs taken under the same background load. Only two sessions exist at a time (each holds its
  // own activation arena: 1.7 GiB for mha, 3.3 GiB for moas).
  const mha = cfg.variants.includes('mha') ? await prepareVariant('mha', cfg) : null
  const others = cfg.variants.filter((v) => v !== 'mha')
  const pairs: { row: Omit<TrainStepRow, 'vsMha'>; mhaMs: number[] }[] = []
  for (const v of mha && others.length === 0 ? [] : others) {
    const r = await prepareVariant(v, cfg)
    const mhaFrom = mha?.ms.length ?? 0
    for (let i = 0; i < cfg.reps; i++) {
      const order = mha ? (i % 2 === 0 ? [mha, r] : [r, mha]) : [r]
      for (const x of order) await x.step(true)
    }
    await r.release()
    const row = r.row(r.ms)
    pairs.push({ row, mhaMs: mha ? mha.ms.slice(mhaFrom) : [] })
    log(`${v}: ${row.step.median.toFixed(0)} ms/step median of ${cfg.reps}${mha ? `, mha alongside ${summarize(mha.ms.slice(mhaFrom)).median.toFixed(0)} ms` : ''} (setup ${(row.setupMs / 1000).toFixed(1)} s)`)
  }
  if (mha) {
    if (others.length === 0) for (let i = 0; i < cfg.reps; i++) await mha.step(true)
    await mha.release()
    // mha's own row pools every mha step of the run.
    const row = mha.row(mha.ms)
    rows.push({ ...row, vsMha: 1 })
    log(`mha: ${row.step.median.toFixed(0)} ms/step median of ${mha.ms.length}`)
  }
  for (const p of pairs) rows.push({ ...p.row, vsMha: p.mhaMs.length ? p.row.step.median / summarize(p.mhaMs).median : null })
  rows.sort((a, b) => cfg.variants.indexOf(a.variant) - cfg.variants.indexOf(b.variant))
  const { attention: _, ...model } = paperConfig('mha', cfg.vocab)
  return { config: cfg, model, rows }
}

const goalNote = (r: TrainStepRow) => {
  const g = TRAIN_GOALS[r.variant]
  if (!g) return ''
  const s = r.step.median / 1000
  return `goal ≤ ${g.goal} s: ${s <= g.goal ? 'met' : 'NOT met'}; paper's PyTorch ≈ ${g.pytorch} s`
}

export function describeTrainStep(r: TrainStepResult): string {
  const c = r.config
  const lines = [
    `train-step: paper config (batch ${c.batch} × ${c.seq} tokens, vocab ${c.vocab}, ${r.model.n_layer} layers, ${r.model.n_head} heads, ${r.model.n_embd} wide, dropout ${r.model.dropout}); fused forward + backward + AdamW, one session.run; warmup ${c.warmup}, median of ${c.reps} (mha: of all its steps, taken alternately with each other variant; "vs mha" compares each variant with the mha steps interleaved with it)`,
    `  graph: @moas/trainer's TrainingSession (buildTrainingGraph); ms/step = session.run; noise = the trainer's JS dropout-noise draw per step (extra); GFLOP/s = exact MatMul FLOPs of the graph / median`,
    `  ${'variant'.padEnd(12)} ${'params'.padStart(9)} ${'ms/step'.padStart(8)} ${'min–max'.padStart(13)} ${'tokens/s'.padStart(9)} ${'GFLOP'.padStart(7)} ${'GFLOP/s'.padStart(8)} ${'vs mha'.padStart(7)} ${'noise ms'.padStart(9)}`,
  ]
  for (const row of r.rows)
    lines.push(
      `  ${row.variant.padEnd(12)} ${row.params.toLocaleString('en-US').padStart(9)} ${row.step.median.toFixed(0).padStart(8)} ${`${row.step.min.toFixed(0)}–${row.step.max.toFixed(0)}`.padStart(13)} ${row.tokensPerS.toFixed(0).padStart(9)} ${row.gflop.toFixed(1).padStart(7)} ${row.gflops.toFixed(1).padStart(8)} ${row.vsMha === null ? '      -' : `${row.vsMha.toFixed(2)}×`.padStart(7)} ${row.noiseMs.toFixed(0).padStart(9)}  ${goalNote(row)}`,
    )
  return lines.join('\n')
}

export function trainStepMarkdown(r: TrainStepResult): string {
  const c = r.config
  return [
    `Paper config: batch ${c.batch} × ${c.seq} tokens, vocab ${c.vocab}, ${r.model.n_layer} layers, ${r.model.n_head} heads, ${r.model.n_embd} wide, dropout ${r.model.dropout}. One fused session.run (forward + backward + AdamW) per step (@moas/trainer's TrainingSession); ms/step is session.run, "noise ms" the trainer's JS dropout-noise draw per step on top of it; warmup ${c.warmup}, median of ${c.reps}. mha runs alternately with each other variant in turn: its row pools all its steps, and "vs mha" compares each variant with the mha steps interleaved with it. GFLOP = exact MatMul FLOPs of the training graph.`,
    '',
    mdTable(['variant', 'params', 'ms/step median (min–max)', 'tokens/s', 'GFLOP/step', 'GFLOP/s', 'vs mha', 'noise ms', 'goal'], r.rows.map((row) => [
      row.variant, row.params.toLocaleString('en-US'), `${row.step.median.toFixed(0)} (${row.step.min.toFixed(0)}–${row.step.max.toFixed(0)})`, row.tokensPerS.toFixed(0),
      row.gflop.toFixed(1), row.gflops.toFixed(1), row.vsMha === null ? '-' : `${row.vsMha.toFixed(2)}×`, row.noiseMs.toFixed(0), goalNote(row) || '-',
    ])),
  ].join('\n')
}
