/**
 * Training-step speed per attention variant at the paper's config (batch 12 × 256 tokens, vocab 283,
 * 4 layers, 6 heads, 384 wide, dropout 0.1): the trainer's fused graph (forward + backward + AdamW, one
 * session.run), params and Adam moments fed and next.* fetched and fed back, as `moas train` does.
 *
 * FLOPs: the exact MatMul FLOPs of the training graph (matmulFlops walks graph.nodes: forward, backward
 * and router GEMMs of the variant as built, including the full T×T attention products the composed causal
 * attention computes). Elementwise work is not counted, so GFLOP/s reads as GEMM throughput.
 */
import { type GptConfig, buildGpt, kvCacheBytesPerToken, paramCounts } from '@moas/gpt'
import * as trainer from '@moas/trainer'
import { type AdamWOptions, Graph, type HostTensor, Session, adamw, adamwScalars, grad, hostTensor, initParams } from '@moas/tensor-core'
import { matmulFlops } from './flops'
import { PAPER_VOCAB, TRAIN_VARIANTS, paperConfig } from './paper'
import { mdTable } from './report'
import { type Timing, nowMs, summarize } from './stats'

/** Goals of issue 4 (seconds per step on the 2-core machine), and the paper's PyTorch code there. */
export const TRAIN_GOALS: Record<string, { goal: number; pytorch: number }> = { mha: { goal: 0.6, pytorch: 1.7 }, moas: { goal: 0.9, pytorch: 8 } }

/** The paper's AdamW: betas (0.9, 0.99), eps 1e-8, weight decay 0.1 on ≥2-D tensors, no clipping. */
const PAPER_OPTIM: AdamWOptions = { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 }

type TrainingGraphBuilder = (cfg: GptConfig, opts: { batch: number; seq?: number; optim: AdamWOptions }) => Graph

/**
 * The trainer's fused training graph when @moas/trainer exports it (what `moas train` runs), else a copy
 * of its documented recipe: noise-input dropout, loss = ce + balance_weight · balance, grad w.r.t. every
 * parameter, in-graph AdamW.
 */
function trainingGraphBuilder(): { build: TrainingGraphBuilder; source: string } {
  const fromTrainer = (trainer as unknown as { buildTrainingGraph?: TrainingGraphBuilder }).buildTrainingGraph
  if (fromTrainer) return { build: fromTrainer, source: "@moas/trainer's buildTrainingGraph" }
  const build: TrainingGraphBuilder = (cfg, opts) => {
    const g = new Graph(`train-${cfg.attention}`)
    g.dropoutNoise = true
    const m = buildGpt(g, cfg, { batch: opts.batch, seq: opts.seq ?? cfg.block_size, training: true, withTargets: true })
    g.output('loss', m.loss!)
    g.output('ce', m.ceLoss!)
    g.output('balance', m.balanceLoss)
    adamw(g, g.params, grad(m.loss!, g.params.map((p) => p.tensor)), opts.optim)
    return g
  }
  return { build, source: "bench's copy of the trainer recipe (@moas/trainer does not export buildTrainingGraph yet)" }
}

export interface TrainStepConfig {
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
  /** This variant's median ms / mha's median ms (same run); null without mha. */
  vsMha: number | null
  kvBytesPerToken: number
  /** Session creation (graph build + serialization + ONNX Runtime optimization), ms. */
  setupMs: number
}

export interface TrainStepResult {
  config: TrainStepConfig
  /** Which code built the training graph. */
  graphSource: string
  model: Omit<GptConfig, 'attention'>
  rows: TrainStepRow[]
}

/** Uniform random uint16 / token ids: values do not change the work, only need to be valid. */
function fillRandom(data: Uint16Array | BigInt64Array, below: number, seed: number): void {
  let s = seed >>> 0
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    const v = Math.floor((s / 4294967296) * below)
    if (data instanceof BigInt64Array) data[i] = BigInt(v)
    else data[i] = v
  }
}

async function measureVariant(variant: string, cfg: TrainStepConfig, build: TrainingGraphBuilder, log: (msg: string) => void): Promise<Omit<TrainStepRow, 'vsMha'>> {
  const model = paperConfig(variant, cfg.vocab)
  const t0 = nowMs()
  const graph = build(model, { batch: cfg.batch, seq: cfg.seq, optim: PAPER_OPTIM })
  const session = await Session.create(graph, { threads: cfg.threads })
  const setupMs = nowMs() - t0

  const feeds: Record<string, HostTensor> = {}
  const tokens = () => {
    const t = hostTensor('int64', [cfg.batch, cfg.seq])
    fillRandom(t.data as BigInt64Array, cfg.vocab, Object.keys(feeds).length + 1)
    return t
  }
  feeds.idx = tokens()
  feeds.targets = tokens()
  graph.noiseInputs.forEach((n, i) => {
    const t = hostTensor('uint16', n.shape as number[])
    fillRandom(t.data as Uint16Array, 65536, 1000 + i)
    feeds[n.name] = t
  })
  const state: string[] = []
  for (const [name, data] of initParams(graph, 1)) {
    const shape = graph.params.find((p) => p.tensor.name === name)!.tensor.shape as number[]
    feeds[name] = hostTensor('float32', shape, data)
    feeds[`adam.m.${name}`] = hostTensor('float32', shape)
    feeds[`adam.v.${name}`] = hostTensor('float32', shape)
    state.push(name, `adam.m.${name}`, `adam.v.${name}`)
  }
  let t = 0
  const step = async () => {
    const s = adamwScalars(++t, 3e-4, PAPER_OPTIM)
    feeds.lr = hostTensor('float32', [], [s.lr])
    feeds.bias_correction1 = hostTensor('float32', [], [s.biasCorrection1])
    feeds.bias_correction2 = hostTensor('float32', [], [s.biasCorrection2])
    const out = await session.run(feeds)
    const loss = out.loss.data[0] as number
    if (!Number.isFinite(loss)) throw new Error(`train-step ${variant}: loss is ${loss} at step ${t}`)
    for (const name of state) feeds[name] = out[`next.${name}`]
  }
  for (let i = 0; i < cfg.warmup; i++) await step()
  const ms: number[] = []
  for (let i = 0; i < cfg.reps; i++) {
    const s0 = nowMs()
    await step()
    ms.push(nowMs() - s0)
  }
  await session.release()
  const timing = summarize(ms)
  const flops = matmulFlops(graph)
  log(`${variant}: ${timing.median.toFixed(0)} ms/step median of ${cfg.reps} (setup ${(setupMs / 1000).toFixed(1)} s)`)
  return {
    variant,
    params: paramCounts(model).total,
    gflop: flops / 1e9,
    step: timing,
    tokensPerS: (cfg.batch * cfg.seq) / (timing.median / 1000),
    gflops: flops / 1e9 / (timing.median / 1000),
    kvBytesPerToken: kvCacheBytesPerToken(model),
    setupMs,
  }
}

export async function runTrainStep(cfg: TrainStepConfig, log: (msg: string) => void = () => {}): Promise<TrainStepResult> {
  const rows: Omit<TrainStepRow, 'vsMha'>[] = []
  const { build, source } = trainingGraphBuilder()
  log(`training graph: ${source}`)
  // One variant at a time: each session holds its own activation arena, and seven at once would not fit
  // comfortably on a shared 24 GiB machine.
  for (const v of cfg.variants) rows.push(await measureVariant(v, cfg, build, log))
  const mha = rows.find((r) => r.variant === 'mha')
  const { attention: _, ...model } = paperConfig('mha', cfg.vocab)
  return { config: cfg, model, graphSource: source, rows: rows.map((r) => ({ ...r, vsMha: mha ? r.step.median / mha.step.median : null })) }
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
    `train-step: paper config (batch ${c.batch} × ${c.seq} tokens, vocab ${c.vocab}, ${r.model.n_layer} layers, ${r.model.n_head} heads, ${r.model.n_embd} wide, dropout ${r.model.dropout}); fused forward + backward + AdamW, one session.run; warmup ${c.warmup}, median of ${c.reps}`,
    `  graph: ${r.graphSource}; GFLOP/s = exact MatMul FLOPs of the training graph / median time`,
    `  ${'variant'.padEnd(12)} ${'params'.padStart(9)} ${'ms/step'.padStart(8)} ${'min–max'.padStart(13)} ${'tokens/s'.padStart(9)} ${'GFLOP'.padStart(7)} ${'GFLOP/s'.padStart(8)} ${'vs mha'.padStart(7)}`,
  ]
  for (const row of r.rows)
    lines.push(
      `  ${row.variant.padEnd(12)} ${row.params.toLocaleString('en-US').padStart(9)} ${row.step.median.toFixed(0).padStart(8)} ${`${row.step.min.toFixed(0)}–${row.step.max.toFixed(0)}`.padStart(13)} ${row.tokensPerS.toFixed(0).padStart(9)} ${row.gflop.toFixed(1).padStart(7)} ${row.gflops.toFixed(1).padStart(8)} ${row.vsMha === null ? '   -' : `${row.vsMha.toFixed(2)}×`.padStart(7)}  ${goalNote(row)}`,
    )
  return lines.join('\n')
}

export function trainStepMarkdown(r: TrainStepResult): string {
  const c = r.config
  return [
    `Paper config: batch ${c.batch} × ${c.seq} tokens, vocab ${c.vocab}, ${r.model.n_layer} layers, ${r.model.n_head} heads, ${r.model.n_embd} wide, dropout ${r.model.dropout}. One fused session.run (forward + backward + AdamW) per step (graph: ${r.graphSource}); warmup ${c.warmup}, median of ${c.reps}. GFLOP = exact MatMul FLOPs of the training graph.`,
    '',
    mdTable(['variant', 'params', 'ms/step median (min–max)', 'tokens/s', 'GFLOP/step', 'GFLOP/s', 'vs mha', 'goal'], r.rows.map((row) => [
      row.variant, row.params.toLocaleString('en-US'), `${row.step.median.toFixed(0)} (${row.step.min.toFixed(0)}–${row.step.max.toFixed(0)})`, row.tokensPerS.toFixed(0),
      row.gflop.toFixed(1), row.gflops.toFixed(1), row.vsMha === null ? '-' : `${row.vsMha.toFixed(2)}×`, goalNote(row) || '-',
    ])),
  ].join('\n')
}
