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
import { type HostTensor, hostTensor, Mulberry32, type Provider, randomNormal, Session } from '@moas/tensor-core'
import { initialParams, PAPER_OPTIM, TrainingSession, Xoshiro128 } from '@moas/trainer'
import { matmulFlops, matmulOnlyGraph } from './flops'
import { PAPER_VOCAB, paperConfig, TRAIN_VARIANTS } from './paper'
import { type GraphProfile, profileGraph, syntheticFeeds } from './profile'
import { mdTable } from './report'
import { nowMs, summarize, type Timing } from './stats'

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
  /** Also run each variant's step under ONNX Runtime's profiler (kernel time per op type and scope). */
  profile?: boolean
}

export const TRAIN_STEP_DEFAULTS: Omit<TrainStepConfig, 'threads'> = {
  variants: [...TRAIN_VARIANTS],
  batch: 12,
  seq: 256,
  vocab: PAPER_VOCAB,
  warmup: 1,
  reps: 5,
}

export interface TrainStepRow {
  variant: string
  params: number
  /** MatMul GFLOP of one training step (exact, from the graph). */
  gflop: number
  /** MatMul nodes of the step (the GEMMs the MatMul-only graph runs). */
  gemms: number
  step: Timing
  /** The same GEMMs alone (matmulOnlyGraph of the training graph), measured in the same rotation. */
  matmulOnly: Timing
  /** matmulOnly median / step median: the step's throughput as a fraction of its GEMMs' alone. */
  roofline: number
  tokensPerS: number
  gflops: number
  /** This variant's median ms / the median of the mha steps interleaved with it; null without mha. */
  vsMha: number | null
  /** This variant's MatMul FLOPs / mha's (null without mha): the ratio its time over mha would have at equal efficiency. */
  flopRatio: number | null
  kvBytesPerToken: number
  /** Session creation (graph build + serialization + ONNX Runtime optimization), ms. */
  setupMs: number
  /** Median ms the trainer spends per step drawing dropout noise in JS (not part of `step`). */
  noiseMs: number
  /** noiseMs / step median. */
  noiseShare: number
  noiseValues: number
}

export interface TrainStepResult {
  config: TrainStepConfig
  model: Omit<GptConfig, 'attention'>
  rows: TrainStepRow[]
  /** With `profile`: per variant, where the step's kernel time goes. */
  profiles?: Record<string, Omit<GraphProfile, 'optimizedNodes'>>
}

/** Uniform random token ids: their values do not change the work, they only need to be valid. */
function randomTokens(n: number, vocab: number, seed: number): BigInt64Array {
  const rng = new Mulberry32(seed)
  return BigInt64Array.from({ length: n }, () => BigInt(rng.int(vocab)))
}

/**
 * The variant's GEMMs alone (matmulOnlyGraph of its training graph), timed as session.run like the step.
 * One random buffer per distinct shape, fed under every input of that shape.
 */
async function prepareMatMulOnly(variant: string, trainGraph: TrainingSession['graph'], cfg: TrainStepConfig) {
  const { graph, inputs } = matmulOnlyGraph(trainGraph)
  const flops = matmulFlops(trainGraph)
  if (matmulFlops(graph) !== flops)
    throw new Error(`train-step ${variant}: the MatMul-only graph does ${matmulFlops(graph)} FLOPs, the step ${flops}; the comparison would be unfair`)
  const session = await Session.create(graph, { threads: cfg.threads, provider: cfg.provider })
  const byShape = new Map<string, HostTensor>()
  const feeds: Record<string, HostTensor> = {}
  for (const { name, shape } of inputs) {
    const key = shape.join('x')
    if (!byShape.has(key))
      byShape.set(
        key,
        hostTensor(
          'float32',
          shape,
          randomNormal(
            shape.reduce((a, b) => a * b, 1),
            byShape.size + 1,
            0.1,
          ),
        ),
      )
    feeds[name] = byShape.get(key)!
  }
  const ms: number[] = []
  const step = async (timed: boolean) => {
    const t0 = nowMs()
    await session.run(feeds)
    if (timed) ms.push(nowMs() - t0)
  }
  return { step, ms, flops, gemms: inputs.length / 2, release: () => session.release() }
}

/**
 * The trainer's own TrainingSession for one variant (`step()` runs one fused update, next.* fed back
 * inside), and the MatMul-only graph of the same GEMMs beside it.
 */
async function prepareVariant(variant: string, cfg: TrainStepConfig) {
  const model = paperConfig(variant, cfg.vocab)
  const t0 = nowMs()
  const session = await TrainingSession.create(
    model,
    { batch: cfg.batch, seq: cfg.seq, optim: PAPER_OPTIM, threads: cfg.threads, provider: cfg.provider },
    { params: initialParams(model, 1), noise: new Xoshiro128(1) },
  )
  const setupMs = nowMs() - t0
  const graph = session.graph
  const matmulOnly = await prepareMatMulOnly(variant, graph, cfg)
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
  for (let i = 0; i < cfg.warmup; i++) {
    await step(false)
    await matmulOnly.step(false)
  }
  const row = (): Omit<TrainStepRow, 'vsMha' | 'flopRatio'> => {
    const timing = summarize(ms)
    const mm = summarize(matmulOnly.ms)
    const flops = matmulOnly.flops // the step's MatMul FLOPs, counted once
    const noise = summarize(noiseMs).median
    return {
      variant,
      params: paramCounts(model).total,
      gflop: flops / 1e9,
      gemms: matmulOnly.gemms,
      step: timing,
      matmulOnly: mm,
      roofline: mm.median / timing.median,
      tokensPerS: n / (timing.median / 1000),
      gflops: flops / 1e9 / (timing.median / 1000),
      kvBytesPerToken: kvCacheBytesPerToken(model),
      setupMs,
      noiseMs: noise,
      noiseShare: noise / timing.median,
      noiseValues: session.noisePerPass,
    }
  }
  const release = async () => {
    await session.release()
    await matmulOnly.release()
  }
  // Profiled after the timing, on a fresh session of the same graph with synthetic feeds.
  const profile = async (): Promise<Omit<GraphProfile, 'optimizedNodes'>> => {
    const { optimizedNodes: _, ...p } = await profileGraph(graph, syntheticFeeds(graph, cfg.vocab), { threads: cfg.threads, runs: 2 })
    return p
  }
  return { variant, step, ms, matmulOnly, row, release, profile }
}

export async function runTrainStep(cfg: TrainStepConfig, log: (msg: string) => void = () => {}): Promise<TrainStepResult> {
  // mha stays alive and alternates step by step with each other variant in turn, so every "vs mha" ratio
  // compares runs taken under the same background load; each variant's MatMul-only graph runs in the same
  // rotation. Only two training sessions exist at a time (each holds its own activation arena: 1.7 GiB
  // for mha, 3.3 GiB for moas).
  const mha = cfg.variants.includes('mha') ? await prepareVariant('mha', cfg) : null
  const others = cfg.variants.filter((v) => v !== 'mha')
  const pairs: { row: Omit<TrainStepRow, 'vsMha' | 'flopRatio'>; mhaMs: number[] }[] = []
  const profiles: Record<string, Omit<GraphProfile, 'optimizedNodes'>> = {}
  const profileOf = async (r: { variant: string; profile: () => Promise<Omit<GraphProfile, 'optimizedNodes'>> }) => {
    if (!cfg.profile) return
    log(`${r.variant}: profiling the step (ONNX Runtime profiler)`)
    profiles[r.variant] = await r.profile()
  }
  for (const v of mha && others.length === 0 ? [] : others) {
    const r = await prepareVariant(v, cfg)
    const mhaFrom = mha?.ms.length ?? 0
    for (let i = 0; i < cfg.reps; i++) {
      const runs = [
        (t: boolean) => r.step(t),
        (t: boolean) => r.matmulOnly.step(t),
        ...(mha ? [(t: boolean) => mha.step(t), (t: boolean) => mha.matmulOnly.step(t)] : []),
      ]
      // Rotate the order so no measurement always follows the same one's allocations.
      for (let j = 0; j < runs.length; j++) await runs[(i + j) % runs.length](true)
    }
    await r.release()
    await profileOf(r)
    const row = r.row()
    pairs.push({ row, mhaMs: mha ? mha.ms.slice(mhaFrom) : [] })
    log(
      `${v}: ${row.step.median.toFixed(0)} ms/step, MatMul-only ${row.matmulOnly.median.toFixed(0)} ms (${row.roofline.toFixed(2)}), median of ${cfg.reps}${mha ? `; mha alongside ${summarize(mha.ms.slice(mhaFrom)).median.toFixed(0)} ms` : ''} (setup ${(row.setupMs / 1000).toFixed(1)} s)`,
    )
  }
  const rows: TrainStepRow[] = []
  let mhaGflop: number | null = null
  if (mha) {
    if (others.length === 0)
      for (let i = 0; i < cfg.reps; i++) {
        await mha.step(true)
        await mha.matmulOnly.step(true)
      }
    await mha.release()
    await profileOf(mha)
    // mha's own row pools every mha step of the run.
    const row = mha.row()
    mhaGflop = row.gflop
    rows.push({ ...row, vsMha: 1, flopRatio: 1 })
    log(
      `mha: ${row.step.median.toFixed(0)} ms/step, MatMul-only ${row.matmulOnly.median.toFixed(0)} ms (${row.roofline.toFixed(2)}), median of ${mha.ms.length}`,
    )
  }
  for (const p of pairs)
    rows.push({
      ...p.row,
      vsMha: p.mhaMs.length ? p.row.step.median / summarize(p.mhaMs).median : null,
      flopRatio: mhaGflop === null ? null : p.row.gflop / mhaGflop,
    })
  rows.sort((a, b) => cfg.variants.indexOf(a.variant) - cfg.variants.indexOf(b.variant))
  const { attention: _, ...model } = paperConfig('mha', cfg.vocab)
  return { config: cfg, model, rows, ...(cfg.profile ? { profiles } : {}) }
}

/** Issue 9's goals for the step: mha at ≥ 0.8 of its MatMul-only time, each variant's cost over mha within 1.1× its FLOP ratio, dropout noise ≤ 5 % of a step. */
export const STEP_GOALS = { mhaRoofline: 0.8, flopRatioSlack: 1.1, noiseShare: 0.05 }

/** A goal of the step as the bench prints it; `why`, on a goal not met, is worked out from the same run's figures. */
export interface StepGoal {
  text: string
  met: boolean
  why?: string
}

/** GEMM kernels: everything else in a profile is the step's non-GEMM work. */
const GEMM_OPS = new Set(['MatMul', 'FusedMatMul', 'Gemm'])

/** The largest non-GEMM op types of a profiled step, as shares of its kernel time. */
function nonGemmKernels(p: Omit<GraphProfile, 'optimizedNodes'> | undefined): string {
  if (!p) return ''
  const total = p.byOp.reduce((a, o) => a + o.ms, 0)
  const top = p.byOp.filter((o) => !GEMM_OPS.has(o.key)).slice(0, 3)
  return total > 0 && top.length ? `; largest non-GEMM kernels (profile): ${top.map((o) => `${o.key} ${((100 * o.ms) / total).toFixed(0)} %`).join(', ')}` : ''
}

/**
 * The issue 9 goals a row meets or misses. A missed goal says why, from the run's own measurements: the
 * time/FLOP ratio over mha splits exactly into its GEMMs' time per FLOP over mha's (MatMul-only graphs)
 * times the rest (non-GEMM work and load), with the range its min–max steps allow; with `--profile`, the
 * largest non-GEMM kernels.
 */
export function stepGoals(r: TrainStepRow, mha?: TrainStepRow, profile?: Omit<GraphProfile, 'optimizedNodes'>): StepGoal[] {
  const out: StepGoal[] = []
  if (r.variant === 'mha') {
    const met = r.roofline >= STEP_GOALS.mhaRoofline
    const other = r.step.median - r.matmulOnly.median
    out.push({
      text: `MatMul-only fraction ${r.roofline.toFixed(2)} (goal ≥ ${STEP_GOALS.mhaRoofline})`,
      met,
      ...(met ? {} : { why: `work other than its GEMMs takes ${other.toFixed(0)} of ${r.step.median.toFixed(0)} ms${nonGemmKernels(profile)}` }),
    })
  } else if (r.vsMha !== null && r.flopRatio !== null) {
    const slack = r.vsMha / r.flopRatio
    const met = slack <= STEP_GOALS.flopRatioSlack
    let why: string | undefined
    if (!met && mha) {
      const gemm = r.matmulOnly.median / r.gflop / (mha.matmulOnly.median / mha.gflop)
      const slackAt = (ms: number, mhaMs: number) => ms / mhaMs / r.flopRatio!
      why =
        `${slack.toFixed(2)} = ${gemm.toFixed(2)} (its GEMMs alone, time per FLOP over mha's) × ${(slack / gemm).toFixed(2)} (the rest: non-GEMM work and load); ` +
        `its steps' min–max (${r.step.min.toFixed(0)}–${r.step.max.toFixed(0)} ms) against mha's median put the ratio between ${slackAt(r.step.min, mha.step.median).toFixed(2)} and ${slackAt(r.step.max, mha.step.median).toFixed(2)}${nonGemmKernels(profile)}`
    }
    out.push({ text: `time/FLOP ratio over mha ${slack.toFixed(2)} (goal ≤ ${STEP_GOALS.flopRatioSlack})`, met, ...(why ? { why } : {}) })
  }
  const noiseMet = r.noiseShare <= STEP_GOALS.noiseShare
  out.push({
    text: `noise ${(100 * r.noiseShare).toFixed(1)} % of a step (goal ≤ ${100 * STEP_GOALS.noiseShare} %)`,
    met: noiseMet,
    ...(noiseMet
      ? {}
      : {
          why: `the JS draw of ${(r.noiseValues / 1e6).toFixed(1)} M mask values per step takes ${r.noiseMs.toFixed(0)} ms of a ${r.step.median.toFixed(0)} ms step`,
        }),
  })
  return out
}

const stepGoalsOf = (res: TrainStepResult, r: TrainStepRow) =>
  stepGoals(
    r,
    res.rows.find((x) => x.variant === 'mha'),
    res.profiles?.[r.variant],
  )
const stepGoalNote = (goals: StepGoal[]) => goals.map((g) => `${g.text}: ${g.met ? 'met' : 'NOT met'}`).join('; ')
/** The reasons of a row's missed goals, one per goal. */
const stepGoalWhy = (goals: StepGoal[]) => goals.flatMap((g) => (g.why ? [g.why] : []))

const goalNote = (r: TrainStepRow) => {
  const g = TRAIN_GOALS[r.variant]
  if (!g) return ''
  const s = r.step.median / 1000
  return `goal ≤ ${g.goal} s: ${s <= g.goal ? 'met' : 'NOT met'}; paper's PyTorch ≈ ${g.pytorch} s`
}

export function describeTrainStep(r: TrainStepResult): string {
  const c = r.config
  const lines = [
    `train-step: paper config (batch ${c.batch} × ${c.seq} tokens, vocab ${c.vocab}, ${r.model.n_layer} layers, ${r.model.n_head} heads, ${r.model.n_embd} wide, dropout ${r.model.dropout}); fused forward + backward + AdamW, one session.run; warmup ${c.warmup}, median of ${c.reps} (mha: of all its steps, taken in rotation with each other variant; "vs mha" compares each variant with the mha steps interleaved with it)`,
    `  graph: @moas/trainer's TrainingSession (buildTrainingGraph); ms/step = session.run; MatMul-only = the same GEMMs alone (same shapes, same FLOPs), in the same rotation; of MM = MatMul-only ms / step ms; FLOP ratio = MatMul FLOPs / mha's; noise = the trainer's JS dropout-noise draw per step (extra)`,
    `  ${'variant'.padEnd(12)} ${'params'.padStart(10)} ${'ms/step'.padStart(8)} ${'min–max'.padStart(11)} ${'MM ms'.padStart(6)} ${'of MM'.padStart(6)} ${'GFLOP'.padStart(6)} ${'GFLOP/s'.padStart(8)} ${'vs mha'.padStart(7)} ${'FLOP×'.padStart(6)} ${'noise'.padStart(6)}`,
  ]
  for (const row of r.rows)
    lines.push(
      `  ${row.variant.padEnd(12)} ${row.params.toLocaleString('en-US').padStart(10)} ${row.step.median.toFixed(0).padStart(8)} ${`${row.step.min.toFixed(0)}–${row.step.max.toFixed(0)}`.padStart(11)} ${row.matmulOnly.median.toFixed(0).padStart(6)} ${row.roofline.toFixed(2).padStart(6)} ${row.gflop.toFixed(1).padStart(6)} ${row.gflops.toFixed(1).padStart(8)} ${row.vsMha === null ? '-'.padStart(7) : `${row.vsMha.toFixed(2)}×`.padStart(7)} ${row.flopRatio === null ? '-'.padStart(6) : `${row.flopRatio.toFixed(2)}×`.padStart(6)} ${`${row.noiseMs.toFixed(0)} ms`.padStart(6)}`,
    )
  lines.push('  goals (issue 9 §3):')
  for (const row of r.rows) {
    const goals = stepGoalsOf(r, row)
    lines.push(`    ${row.variant.padEnd(12)} ${[stepGoalNote(goals), goalNote(row)].filter(Boolean).join('; ')}`)
    for (const why of stepGoalWhy(goals)) lines.push(`    ${''.padEnd(12)} why: ${why}`)
  }
  return lines.join('\n')
}

export function trainStepMarkdown(r: TrainStepResult): string {
  const c = r.config
  return [
    `Paper config: batch ${c.batch} × ${c.seq} tokens, vocab ${c.vocab}, ${r.model.n_layer} layers, ${r.model.n_head} heads, ${r.model.n_embd} wide, dropout ${r.model.dropout}. One fused session.run (forward + backward + AdamW) per step (@moas/trainer's TrainingSession); ms/step is session.run, "noise ms" the trainer's JS dropout-noise draw per step on top of it; warmup ${c.warmup}, median of ${c.reps}. "MatMul-only" runs the same GEMMs alone (every MatMul of the training graph with its operand shapes, so the same FLOPs; no transposes, masks, softmax, elementwise backward or optimizer), in the same rotation as the steps; "of MatMul-only" is its time over the step's. mha runs in rotation with each other variant in turn: its row pools all its steps, and "vs mha" compares each variant with the mha steps interleaved with it; "FLOP ratio" is the variant's MatMul FLOPs over mha's, the ratio "vs mha" would have at equal efficiency.`,
    '',
    mdTable(
      [
        'variant',
        'params',
        'ms/step median (min–max)',
        'MatMul-only ms',
        'of MatMul-only',
        'GFLOP/step',
        'GFLOP/s',
        'vs mha',
        'FLOP ratio',
        'noise ms',
        'goals',
        'why not',
      ],
      r.rows.map((row) => {
        const goals = stepGoalsOf(r, row)
        return [
          row.variant,
          row.params.toLocaleString('en-US'),
          `${row.step.median.toFixed(0)} (${row.step.min.toFixed(0)}–${row.step.max.toFixed(0)})`,
          row.matmulOnly.median.toFixed(0),
          row.roofline.toFixed(2),
          row.gflop.toFixed(1),
          row.gflops.toFixed(1),
          row.vsMha === null ? '-' : `${row.vsMha.toFixed(2)}×`,
          row.flopRatio === null ? '-' : `${row.flopRatio.toFixed(2)}×`,
          row.noiseMs.toFixed(0),
          [stepGoalNote(goals), goalNote(row)].filter(Boolean).join('; '),
          stepGoalWhy(goals).join('; '),
        ]
      }),
    ),
  ].join('\n')
}
