/**
 * The prefill sweep (`pnpm bench --bench prefill`): the forward pass of one sequence of T tokens (batch 1,
 * no gradients) from 512 to 32k tokens, where GQE's claim lives.
 *
 * - GQE's main setting (16 query heads in 8 KV groups, head size 64, n_embd 1024, 2 layers, random weights
 *   embedded as initializers): gqa vs gqe, the GQE ablations, mha and mqa for reference.
 * - The attention core alone (random q, k, v in each variant's layout): GQE attends with G·k + 1 = 9 of 16
 *   query heads, so its core does at most 16/9 ≈ 1.78× less work.
 * - The same on the composed core (the [T, T] scores of every head), to show what the memory-efficient
 *   core brings, at the lengths its memory allows.
 * - Dense moas vs routed moas-topk (k = 1) at the paper's widths.
 *
 * Every measurement runs in a process of its own (prefillWorker.ts), so its peak resident memory is its
 * own. The ceiling of each speed-up is the exact FLOP ratio of the two graphs (GEMMs plus the causal pairs
 * the attention kernel computes; flops.ts); the bench prints speed-up ÷ ceiling and its goals, met or not.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { PRESETS, type PresetName, VARIANT_TABLE, type Variant } from '@moas/gpt'
import type { Provider } from '@moas/tensor-core'
import { niceTicks } from '@moas/trainer'
import { PAPER_VOCAB } from './paper'
import { type PrefillJob, type PrefillMeasurement, type PrefillModelShape, prefillModelGraph } from './prefillWorker'
import { type GraphProfile, profileGraph } from './profile'
import { mdTable } from './report'
import { summarize, type Timing } from './stats'

export type PrefillSetting = 'gqe' | 'paper'

export interface PrefillConfig {
  provider: Provider
  threads: number
  lengths: number[]
  /** Timed runs per measurement below 16k tokens, and at 16k and above. */
  reps: number
  repsLong: number
  /** Untimed runs first (the first run also pays for ONNX Runtime's allocations). */
  warmup: number
  settings: Record<PrefillSetting, PrefillModelShape>
  /** Only these variants (each with its baseline, gqa or moas); default all. */
  variants?: string[]
  /** Longest T per part of the sweep (the rest of the lengths are skipped for it, with the reason). */
  limits: { ablations: number; references: number; composed: number; paper: number }
}

/** A setting's widths, from @moas/gpt's model preset (WikiText-2's 283 characters). */
function prefillShape(preset: PresetName): PrefillModelShape {
  const p = PRESETS[preset]
  return { n_layer: p.n_layer!, n_head: p.n_head!, n_kv_head: p.n_kv_head!, n_embd: p.n_embd!, vocab: PAPER_VOCAB }
}

export const PREFILL_DEFAULTS: Omit<PrefillConfig, 'threads' | 'provider'> = {
  lengths: [512, 1024, 2048, 4096, 8192, 16384, 32768],
  reps: 5,
  repsLong: 3,
  warmup: 1,
  settings: {
    gqe: prefillShape('gqe-main'),
    paper: prefillShape('paper'),
  },
  limits: { ablations: 8192, references: 16384, composed: 4096, paper: 8192 },
}

/** Why each part stops where it does (printed with the results). */
export const LIMIT_REASONS: Record<keyof PrefillConfig['limits'], string> = {
  ablations: 'the ablations cost what gqe costs (same slots); measured to 8k to keep the sweep under an hour',
  references: 'mha and mqa attend with all 16 query heads, like gqa; measured to 16k to keep the sweep under an hour',
  composed: "the composed core holds every head's [T, T] scores: 16 heads at 8k is 4 GiB per layer's scores alone",
  paper:
    "moas-topk's routed queries attend from scattered positions, which GroupQueryAttention cannot take: that branch runs the composed core (in blocks of routed queries), whose scores grow with T",
}

export interface PrefillEntry {
  setting: PrefillSetting
  kernel: PrefillJob['kernel']
  part: PrefillJob['part']
  variant: string
  T: number
}

/** Every row of a setting is measured against its headline variant's baseline (the registry's): gqa, moas. */
const HEADLINE: Record<PrefillSetting, Variant> = { gqe: 'gqe', paper: 'moas-topk' }
const baselineOf = (setting: PrefillSetting): Variant => VARIANT_TABLE[HEADLINE[setting]].baseline!
const sameGroup = (a: PrefillEntry, b: PrefillEntry) => a.setting === b.setting && a.kernel === b.kernel && a.part === b.part && a.T === b.T

/** What the sweep measures, in order: by length, each length's variants back to back (same load). */
export function prefillPlan(cfg: Pick<PrefillConfig, 'lengths' | 'limits' | 'variants'>): PrefillEntry[] {
  const plan: PrefillEntry[] = []
  const add = (setting: PrefillSetting, kernel: PrefillJob['kernel'], part: PrefillJob['part'], variants: string[], T: number) => {
    for (const variant of variants) plan.push({ setting, kernel, part, variant, T })
  }
  for (const T of [...cfg.lengths].sort((a, b) => a - b)) {
    add('gqe', 'memory-efficient', 'model', ['gqa', 'gqe'], T)
    if (T <= cfg.limits.ablations) add('gqe', 'memory-efficient', 'model', ['gqe-hard-only', 'gqe-no-renorm', 'gqe-no-shared'], T)
    if (T <= cfg.limits.references) add('gqe', 'memory-efficient', 'model', ['mha', 'mqa'], T)
    add('gqe', 'memory-efficient', 'core', ['gqa', 'gqe'], T)
    if (T <= cfg.limits.composed) {
      add('gqe', 'composed', 'model', ['gqa', 'gqe'], T)
      add('gqe', 'composed', 'core', ['gqa', 'gqe'], T)
    }
    if (T <= cfg.limits.paper) add('paper', 'memory-efficient', 'model', ['moas', 'moas-topk'], T)
  }
  const wanted = cfg.variants
  if (!wanted) return plan
  const known = new Set(plan.map((e) => e.variant))
  const unknown = wanted.filter((v) => !known.has(v))
  if (unknown.length) throw new Error(`prefill: no measurement of ${unknown.join(', ')}; it measures ${[...known].join(', ')}`)
  // A speed-up needs its baseline measured next to it.
  return plan.filter(
    (e) => wanted.includes(e.variant) || (e.variant === baselineOf(e.setting) && plan.some((o) => sameGroup(o, e) && wanted.includes(o.variant))),
  )
}

export interface PrefillRow extends PrefillEntry {
  /** Absent when the measurement failed (then `error` says why). */
  run?: Timing
  error?: string
  tokensPerS?: number
  gflop?: number
  peakRssMiB?: number
  ops?: PrefillMeasurement['ops']
  /** The baseline's median / this median (gqa in the GQE setting, moas at the paper's widths). */
  speedup?: number
  /** The baseline's FLOPs / this variant's: the speed-up the work allows. */
  ceiling?: number
  /** speedup / ceiling. */
  efficiency?: number
}

export interface PrefillGoal {
  goal: string
  met: boolean
  measured: string
  /** Where the goal is not met: the cause measured on the machines this was run on, and the bench that measures it. */
  reasonIfNotMet?: string
}

export interface PrefillResult {
  config: PrefillConfig
  rows: PrefillRow[]
  goals: PrefillGoal[]
  /** Log-log slope of gqe's peak memory between the two longest lengths (1 = linear in T). */
  memoryExponent: number | null
}

/** dist/prefill-worker.js, next to the bundle this module is part of. */
export const PREFILL_WORKER = fileURLToPath(new URL('./prefill-worker.js', import.meta.url))

/** Run one measurement in a fresh Node process: its JSON line, or the reason it failed. */
export function runPrefillWorker(job: PrefillJob, worker = PREFILL_WORKER): Promise<PrefillMeasurement> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [worker, JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      const line = out.trim().split('\n').pop()
      if (code === 0 && line) return resolve(JSON.parse(line) as PrefillMeasurement)
      // Only the worker's own message, not ONNX Runtime's provider warnings on stderr.
      const msg = err
        .trim()
        .split('\n')
        .filter((l) => !/^\d{4}-\d\d-\d\d .*\[W:onnxruntime/.test(l))
        .pop()
      reject(new Error(signal ? `killed by ${signal} (out of memory?)` : msg || `exit code ${code}`))
    })
  })
}

/** Relative cost of a measurement, for the ETA: linear work plus the causal attention's T². */
const cost = (e: PrefillEntry, runs: number) => runs * (e.T / 1024) * (1 + e.T / 4096) * (e.part === 'core' ? 0.6 : 1) * (e.setting === 'paper' ? 0.5 : 1)

function bar(fraction: number, width = 24): string {
  const n = Math.round(fraction * width)
  return `[${'#'.repeat(n)}${'.'.repeat(width - n)}] ${(100 * fraction).toFixed(0).padStart(3)}%`
}

export async function runPrefill(cfg: PrefillConfig, log: (msg: string) => void = () => {}, worker = PREFILL_WORKER): Promise<PrefillResult> {
  const plan = prefillPlan(cfg)
  const repsAt = (T: number) => (T >= 16384 ? cfg.repsLong : cfg.reps)
  const total = plan.reduce((s, e) => s + cost(e, repsAt(e.T) + cfg.warmup), 0)
  const t0 = performance.now()
  let done = 0
  const rows: PrefillRow[] = []
  for (const [i, e] of plan.entries()) {
    const job: PrefillJob = {
      variant: e.variant,
      T: e.T,
      kernel: e.kernel,
      part: e.part,
      model: cfg.settings[e.setting],
      warmup: cfg.warmup,
      reps: repsAt(e.T),
      threads: cfg.threads,
      provider: cfg.provider,
    }
    let row: PrefillRow
    try {
      const m = await runPrefillWorker(job, worker)
      const run = summarize(m.ms)
      row = { ...e, run, tokensPerS: e.T / (run.median / 1000), gflop: m.gflop, peakRssMiB: m.peakRssMiB, ops: m.ops }
    } catch (err) {
      row = { ...e, error: (err as Error).message }
    }
    rows.push(row)
    done += cost(e, repsAt(e.T) + cfg.warmup)
    const elapsed = (performance.now() - t0) / 1000
    const eta = (elapsed / done) * (total - done)
    const what = row.run ? `${row.run.median.toFixed(0)} ms, peak ${(row.peakRssMiB! / 1024).toFixed(2)} GiB` : `failed: ${row.error}`
    log(`${bar(done / total)} ${i + 1}/${plan.length} ETA ${formatSeconds(eta)} | T=${e.T} ${e.setting} ${e.kernel} ${e.part} ${e.variant}: ${what}`)
  }
  for (const r of rows) {
    const base = rows.find((b) => sameGroup(b, r) && b.variant === baselineOf(r.setting))
    if (!base?.run || !r.run) continue
    r.speedup = base.run.median / r.run.median
    r.ceiling = base.gflop! / r.gflop!
    r.efficiency = r.speedup / r.ceiling
  }
  const memoryExponent = growthExponent(rows)
  return { config: cfg, rows, goals: prefillGoals(cfg, rows, memoryExponent), memoryExponent }
}

export interface PrefillProfile {
  setting: PrefillSetting
  variant: string
  T: number
  profile: GraphProfile
}

/**
 * `--profile`: ONNX Runtime's per-kernel profile of each whole-model forward in the plan (the shipped
 * memory-efficient kernel), `runs` runs after one warm-up. It runs in this process after the sweep, so the
 * sweep's peaks stay each worker's own; where the time goes, not how long a prefill takes (the profiler
 * adds its own cost).
 */
export async function profilePrefill(cfg: PrefillConfig, log: (msg: string) => void = () => {}, runs = 3): Promise<PrefillProfile[]> {
  const entries = prefillPlan(cfg).filter((e) => e.part === 'model' && e.kernel === 'memory-efficient')
  const out: PrefillProfile[] = []
  for (const [i, e] of entries.entries()) {
    log(`profile ${i + 1}/${entries.length} | T=${e.T} ${e.setting} ${e.variant}`)
    const { graph, feeds, params } = prefillModelGraph({ variant: e.variant, T: e.T, kernel: e.kernel, model: cfg.settings[e.setting] })
    out.push({ setting: e.setting, variant: e.variant, T: e.T, profile: await profileGraph(graph, feeds, { threads: cfg.threads, runs, params }) })
  }
  return out
}

const formatSeconds = (s: number) => (s >= 90 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`)

function growthExponent(rows: PrefillRow[]): number | null {
  const pts = rows
    .filter((r) => r.setting === 'gqe' && r.kernel === 'memory-efficient' && r.part === 'model' && r.variant === 'gqe' && r.peakRssMiB)
    .sort((a, b) => a.T - b.T)
  if (pts.length < 2) return null
  const [a, b] = pts.slice(-2)
  return Math.log(b.peakRssMiB! / a.peakRssMiB!) / Math.log(b.T / a.T)
}

const fmt = (v: number | undefined, digits = 2, unit = '×') => (v === undefined ? '–' : `${v.toFixed(digits)}${unit}`)

/**
 * Why GQE's whole model falls short of its FLOP ceiling, from the same run: the rest of the two models
 * (projections, MLP, head) is dense work both do alike, so the attention core is where GQE's saving must
 * show; at each short length, what its core alone reached against the core's own ceiling.
 */
function shortModelReason(model: PrefillRow[], core: PrefillRow[]): string | undefined {
  const short = model.filter((r) => r.efficiency !== undefined && r.efficiency < 0.9)
  if (!short.length) return undefined
  const at = short.map((r) => {
    const c = core.find((x) => x.T === r.T && x.speedup !== undefined)
    return `${r.T / 1024}k: ${c ? `${fmt(c.speedup)} of ${fmt(c.ceiling)}` : 'core not measured'}`
  })
  return `the model's ceiling counts GQE's saved attention work at full value; its attention core alone reached ${at.join(', ')} (speed-up of its own ceiling) in this run`
}

/** Why the core fell short, from this run: each short length's two call times against the ceiling's. */
function shortCoreReason(core: PrefillRow[], baseline: PrefillRow[], threads: number): string | undefined {
  const short = core.filter((r) => r.speedup !== undefined && r.speedup < 1.6 && r.run)
  if (!short.length) return undefined
  const at = short.map((r) => {
    const base = baseline.find((b) => b.T === r.T)?.run
    const t = r.T >= 1024 ? `${r.T / 1024}k` : String(r.T)
    return base
      ? `${t}: gqa ${base.median.toFixed(1)} ms, gqe ${r.run!.median.toFixed(1)} ms (${fmt(r.speedup)} of a ${fmt(r.ceiling)} FLOP ceiling)`
      : `${t}: ${fmt(r.speedup)}`
  })
  return `${at.join('; ')} on ${threads} thread${threads === 1 ? '' : 's'}; \`pnpm bench --bench core-heads\` splits the core's time by call and thread count on this machine (docs/performance.md has the analysis of the 2-thread gap)`
}

/** The issue's goals, each with what was measured (at every length ≥ 4k where it is per length). */
export function prefillGoals(cfg: PrefillConfig, rows: PrefillRow[], memoryExponent: number | null): PrefillGoal[] {
  const long = (r: PrefillRow) => r.T >= 4096
  const pick = (p: Partial<PrefillEntry>) => rows.filter((r) => Object.entries(p).every(([k, v]) => r[k as keyof PrefillEntry] === v))
  const perLength = (rs: PrefillRow[], value: (r: PrefillRow) => number | undefined, ok: (v: number) => boolean, show: (r: PrefillRow) => string) => {
    const met = rs.length > 0 && rs.every((r) => value(r) !== undefined && ok(value(r)!))
    return { met, measured: rs.length ? rs.map((r) => `${r.T >= 1024 ? `${r.T / 1024}k` : r.T}: ${show(r)}`).join(', ') : 'not measured' }
  }
  const model = pick({ setting: 'gqe', kernel: 'memory-efficient', part: 'model', variant: 'gqe' }).filter(long)
  const core = pick({ setting: 'gqe', kernel: 'memory-efficient', part: 'core', variant: 'gqe' }).filter(long)
  const topk = pick({ setting: 'paper', variant: 'moas-topk' })
  const longest = Math.max(...cfg.lengths)
  const top = pick({ setting: 'gqe', kernel: 'memory-efficient', part: 'model', variant: 'gqe', T: longest })[0]
  const budgetMiB = 24 * 1024
  return [
    {
      goal: "GQE's whole-model speed-up ≥ 0.9 × its FLOP ceiling at every length ≥ 4k",
      ...perLength(
        model,
        (r) => r.efficiency,
        (v) => v >= 0.9,
        (r) => `${fmt(r.speedup)} of ${fmt(r.ceiling)} = ${fmt(r.efficiency, 2, '')}`,
      ),
      reasonIfNotMet: shortModelReason(model, core),
    },
    {
      goal: "GQE's attention-core speed-up ≥ 1.6× at every length ≥ 4k (ceiling 16/9)",
      ...perLength(
        core,
        (r) => r.speedup,
        (v) => v >= 1.6,
        (r) => fmt(r.speedup),
      ),
      reasonIfNotMet: shortCoreReason(core, pick({ setting: 'gqe', kernel: 'memory-efficient', part: 'core', variant: baselineOf('gqe') }), cfg.threads),
    },
    {
      goal: 'routed moas-topk ≥ 0.8 × its FLOP ceiling over dense moas',
      ...perLength(
        topk,
        (r) => r.efficiency,
        (v) => v >= 0.8,
        (r) => `${fmt(r.speedup)} of ${fmt(r.ceiling)} = ${fmt(r.efficiency, 2, '')}`,
      ),
      reasonIfNotMet:
        'routed queries sit at scattered positions, which GroupQueryAttention cannot take, so the routed branches run the composed core (in blocks of routed queries), whose non-GEMM work grows with T',
    },
    {
      goal: `${String(longest / 1024).startsWith('8') ? 'an' : 'a'} ${longest / 1024}k-token prefill of the GQE setting within 24 GiB, peak memory about linear in T`,
      met: !!top?.peakRssMiB && top.peakRssMiB < budgetMiB && memoryExponent !== null && memoryExponent <= 1.2,
      measured: top?.peakRssMiB
        ? `peak ${(top.peakRssMiB / 1024).toFixed(2)} GiB at ${longest / 1024}k; growth exponent ${memoryExponent?.toFixed(2) ?? '–'} over the two longest lengths`
        : `not measured${top?.error ? ` (${top.error})` : ''}`,
    },
  ]
}

const settingLine = (name: PrefillSetting, m: PrefillModelShape) =>
  `${name === 'gqe' ? "GQE's setting" : "the paper's widths"}: ${m.n_layer} layers, ${m.n_head} query heads, ${m.n_kv_head} KV heads, n_embd ${m.n_embd} (head size ${m.n_embd / m.n_head}), vocab ${m.vocab}`

const SECTIONS: { title: string; match: (r: PrefillRow) => boolean }[] = [
  { title: "whole model, memory-efficient core (GQE's setting)", match: (r) => r.setting === 'gqe' && r.kernel === 'memory-efficient' && r.part === 'model' },
  {
    title: "attention core alone, memory-efficient (GQE's setting)",
    match: (r) => r.setting === 'gqe' && r.kernel === 'memory-efficient' && r.part === 'core',
  },
  { title: "whole model, composed core (GQE's setting)", match: (r) => r.setting === 'gqe' && r.kernel === 'composed' && r.part === 'model' },
  { title: "attention core alone, composed (GQE's setting)", match: (r) => r.setting === 'gqe' && r.kernel === 'composed' && r.part === 'core' },
  { title: "dense moas vs routed moas-topk (k = 1), the paper's widths", match: (r) => r.setting === 'paper' },
]

const HEADER = ['T', 'variant', 'ms median', 'min–max', 'tokens/s', 'peak GiB', 'GFLOP', 'speed-up', 'ceiling', 'speed-up ÷ ceiling']

function cells(r: PrefillRow): string[] {
  if (!r.run) return [String(r.T), r.variant, `failed: ${r.error}`, '', '', '', '', '', '', '']
  return [
    String(r.T),
    r.variant,
    r.run.median.toFixed(0),
    `${r.run.min.toFixed(0)}–${r.run.max.toFixed(0)}`,
    r.tokensPerS!.toFixed(0),
    (r.peakRssMiB! / 1024).toFixed(2),
    r.gflop!.toFixed(1),
    fmt(r.speedup),
    fmt(r.ceiling),
    fmt(r.efficiency, 2, ''),
  ]
}

function intro(r: PrefillResult): string[] {
  const c = r.config
  return [
    `prefill: forward of one sequence (batch 1, no gradients), one process per measurement; warmup ${c.warmup}, median of ${c.reps} (${c.repsLong} from 16k)`,
    `  ${settingLine('gqe', c.settings.gqe)}; speed-ups vs gqa`,
    `  ${settingLine('paper', c.settings.paper)}; speed-ups vs moas`,
    "  ceiling = the exact FLOP ratio (GEMMs + the causal pairs the attention kernel computes); peak = the process's peak resident memory",
    ...Object.entries(c.limits).map(([k, v]) => `  ${k} to ${v / 1024}k: ${LIMIT_REASONS[k as keyof PrefillConfig['limits']]}`),
  ]
}

/** A goal's measured cause, where it was measured and not met ('' otherwise). */
const whyNot = (g: PrefillGoal) => (!g.met && g.measured !== 'not measured' && g.reasonIfNotMet) || ''

export function describePrefill(r: PrefillResult): string {
  const widths = [6, 14, 9, 13, 9, 8, 8, 8, 8, 8]
  const line = (cs: string[]) => `  ${cs.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' ')}`
  const out = intro(r)
  for (const s of SECTIONS) {
    const rows = r.rows.filter(s.match)
    if (!rows.length) continue
    out.push('', `  ${s.title}`, line(HEADER.slice(0, 9).concat('÷ ceiling')), ...rows.map((row) => line(cells(row))))
  }
  out.push('', '  goals')
  for (const g of r.goals)
    out.push(`  ${g.met ? 'met    ' : 'NOT MET'} ${g.goal}`, `          ${g.measured}`, ...(whyNot(g) ? [`          why: ${whyNot(g)}`] : []))
  return out.join('\n')
}

export function prefillMarkdown(r: PrefillResult): string {
  const out = [
    intro(r)
      .map((l) => l.trim())
      .join('\n\n'),
    '',
    '![speed-up vs length](prefill.svg)',
  ]
  for (const s of SECTIONS) {
    const rows = r.rows.filter(s.match)
    if (rows.length) out.push('', `## ${s.title}`, '', mdTable(HEADER, rows.map(cells)))
  }
  out.push(
    '',
    '## goals',
    '',
    mdTable(
      ['goal', 'met', 'measured', 'why not'],
      r.goals.map((g) => [g.goal, g.met ? 'met' : '**not met**', g.measured, whyNot(g)]),
    ),
  )
  return out.join('\n')
}

/** The paper's reported GQE prefill speed-up range from 4k tokens up. */
export const PAPER_BAND = [1.67, 1.8] as const

/**
 * Speed-up of gqe over gqa against length (log axis), whole model and core, memory-efficient and
 * composed, with the FLOP ceilings and the paper's band. Hand-written SVG like @moas/trainer's charts:
 * deterministic, no plotting dependency.
 */
export function prefillChart(r: PrefillResult): string {
  const W = 760
  const H = 440
  const m = { left: 60, right: 230, top: 40, bottom: 55 }
  const series = [
    {
      name: 'whole model',
      color: '#0072B2',
      dash: '',
      pick: (x: PrefillRow) => x.kernel === 'memory-efficient' && x.part === 'model',
      value: (x: PrefillRow) => x.speedup,
    },
    {
      name: 'whole model: FLOP ceiling',
      color: '#0072B2',
      dash: '5 4',
      pick: (x: PrefillRow) => x.kernel === 'memory-efficient' && x.part === 'model',
      value: (x: PrefillRow) => x.ceiling,
    },
    {
      name: 'attention core',
      color: '#D55E00',
      dash: '',
      pick: (x: PrefillRow) => x.kernel === 'memory-efficient' && x.part === 'core',
      value: (x: PrefillRow) => x.speedup,
    },
    {
      name: 'core: FLOP ceiling',
      color: '#D55E00',
      dash: '5 4',
      pick: (x: PrefillRow) => x.kernel === 'memory-efficient' && x.part === 'core',
      value: (x: PrefillRow) => x.ceiling,
    },
    {
      name: 'whole model, composed core',
      color: '#009E73',
      dash: '2 3',
      pick: (x: PrefillRow) => x.kernel === 'composed' && x.part === 'model',
      value: (x: PrefillRow) => x.speedup,
    },
  ].map((s) => ({
    ...s,
    points: r.rows
      .filter((x) => x.setting === 'gqe' && x.variant === 'gqe' && s.pick(x) && s.value(x) !== undefined)
      .map((x) => [Math.log2(x.T), s.value(x)!] as const),
  }))
  const xs = r.config.lengths.map(Math.log2)
  const x0 = Math.min(...xs) - 0.3
  const x1 = Math.max(...xs) + 0.3
  const ys = series.flatMap((s) => s.points.map((p) => p[1]))
  const y0 = Math.min(1, ...ys) - 0.1
  const y1 = Math.max(PAPER_BAND[1], ...ys) + 0.1
  const X = (v: number) => m.left + ((v - x0) / (x1 - x0)) * (W - m.left - m.right)
  const Y = (v: number) => H - m.bottom - ((v - y0) / (y1 - y0)) * (H - m.top - m.bottom)
  const f = (v: number) => v.toFixed(2)
  const bandX = Math.max(m.left, Math.min(W - m.right, X(12))) // the paper's band starts at 4k = 2^12 tokens
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${f((m.left + W - m.right) / 2)}" y="22" text-anchor="middle" font-size="15">GQE prefill speed-up over GQA (16 q / 8 kv heads, batch 1)</text>`,
    `<rect x="${f(bandX)}" y="${f(Y(PAPER_BAND[1]))}" width="${f(W - m.right - bandX)}" height="${f(Y(PAPER_BAND[0]) - Y(PAPER_BAND[1]))}" fill="#999999" fill-opacity="0.2"/>`,
  ]
  for (const t of niceTicks(y0, y1, 6)) {
    out.push(`<line x1="${f(m.left)}" y1="${f(Y(t))}" x2="${f(W - m.right)}" y2="${f(Y(t))}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${f(m.left - 6)}" y="${f(Y(t) + 4)}" text-anchor="end">${t}×</text>`)
  }
  for (const T of r.config.lengths) {
    out.push(`<line x1="${f(X(Math.log2(T)))}" y1="${f(H - m.bottom)}" x2="${f(X(Math.log2(T)))}" y2="${f(H - m.bottom + 5)}" stroke="#333333"/>`)
    out.push(`<text x="${f(X(Math.log2(T)))}" y="${f(H - m.bottom + 18)}" text-anchor="middle">${T >= 1024 ? `${T / 1024}k` : T}</text>`)
  }
  out.push(`<rect x="${f(m.left)}" y="${f(m.top)}" width="${f(W - m.left - m.right)}" height="${f(H - m.top - m.bottom)}" fill="none" stroke="#333333"/>`)
  out.push(`<text x="${f((m.left + W - m.right) / 2)}" y="${f(H - 14)}" text-anchor="middle">prompt length T (tokens, log scale)</text>`)
  out.push(`<text transform="translate(16 ${f((m.top + H - m.bottom) / 2)}) rotate(-90)" text-anchor="middle">speed-up (gqa ms / gqe ms)</text>`)
  series.forEach((s, i) => {
    if (s.points.length)
      out.push(
        `<polyline points="${s.points.map(([x, y]) => `${f(X(x))},${f(Y(y))}`).join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
      )
    if (!s.dash) for (const [x, y] of s.points) out.push(`<circle cx="${f(X(x))}" cy="${f(Y(y))}" r="3" fill="${s.color}"/>`)
    const ly = m.top + 10 + i * 20
    out.push(
      `<line x1="${f(W - m.right + 15)}" y1="${f(ly)}" x2="${f(W - m.right + 40)}" y2="${f(ly)}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`,
    )
    out.push(`<text x="${f(W - m.right + 46)}" y="${f(ly + 4)}">${s.name}</text>`)
  })
  const ly = m.top + 10 + series.length * 20
  out.push(`<rect x="${f(W - m.right + 15)}" y="${f(ly - 6)}" width="25" height="12" fill="#999999" fill-opacity="0.2"/>`)
  out.push(`<text x="${f(W - m.right + 46)}" y="${f(ly + 4)}">paper: ${PAPER_BAND[0]}–${PAPER_BAND[1]}× from 4k</text>`)
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
