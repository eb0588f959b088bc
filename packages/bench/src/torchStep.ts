/**
 * The same-machine PyTorch baseline for train-step: the PyTorch reference model (tools/reference) trained
 * with torch.optim.AdamW at the paper config, timed per step by python/torch_step.py. Opt-in (slow).
 *
 * Interpreter: MOAS_TORCH_PYTHON (default /usr/bin/python3, Debian's python3-torch). Debian's torch links
 * the system libblas, which by default is the reference BLAS (~3 GFLOP/s); to time it with OpenBLAS
 * without changing the system, extract libopenblas0-pthread and put its directory on LD_LIBRARY_PATH
 * (see the README). The BLAS library the process actually mapped is reported with the figures.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { paperConfig } from './paper'
import { mdTable } from './report'
import { summarize, type Timing } from './stats'

export interface TorchStepConfig {
  variants: string[]
  batch: number
  seq: number
  warmup: number
  reps: number
  threads: number
}

export const TORCH_STEP_DEFAULTS: Omit<TorchStepConfig, 'threads'> = { variants: ['mha', 'static-moas', 'moas'], batch: 12, seq: 256, warmup: 1, reps: 3 }

export interface TorchStepRow {
  variant: string
  params: number
  step: Timing
  tokensPerS: number
  /** moas's own training step of the same variant, measured in the same run right after PyTorch's. */
  moas: Timing | null
  /** PyTorch median / moas median: how many times faster moas's step is. */
  speedup: number | null
}

export interface TorchStepResult {
  config: TorchStepConfig
  python: string
  torch: string
  blas: string[]
  rows: TorchStepRow[]
}

const SCRIPT = fileURLToPath(new URL('../python/torch_step.py', import.meta.url))

export async function runTorchStep(cfg: TorchStepConfig, log: (msg: string) => void = () => {}): Promise<TorchStepResult> {
  const python = process.env.MOAS_TORCH_PYTHON ?? '/usr/bin/python3'
  const job = { threads: cfg.threads, batch: cfg.batch, seq: cfg.seq, warmup: cfg.warmup, reps: cfg.reps, configs: cfg.variants.map((v) => paperConfig(v)) }
  const rows: TorchStepRow[] = []
  let torch = ''
  let blas: string[] = []
  await new Promise<void>((resolve, reject) => {
    const child = spawn(python, [SCRIPT], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, OMP_NUM_THREADS: String(cfg.threads), OPENBLAS_NUM_THREADS: String(cfg.threads) },
    })
    let stderr = ''
    let buf = ''
    child.stderr.on('data', (d) => (stderr += d))
    child.stdout.on('data', (d) => {
      buf += d
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        const r = JSON.parse(line) as { variant: string; ms: number[]; params: number; torch: string; blas: string[] }
        torch = r.torch
        blas = r.blas
        const step = summarize(r.ms)
        rows.push({ variant: r.variant, params: r.params, step, tokensPerS: (cfg.batch * cfg.seq) / (step.median / 1000), moas: null, speedup: null })
        log(`${r.variant}: ${step.median.toFixed(0)} ms/step (PyTorch ${r.torch}, BLAS ${r.blas.join(', ') || 'unknown'})`)
      }
    })
    child.on('error', (e) => reject(new Error(`torch-step: could not start ${python} (${e.message}); set MOAS_TORCH_PYTHON to a Python with torch`)))
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`torch-step: ${python} ${SCRIPT} exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`)),
    )
    child.stdin.end(JSON.stringify(job))
  })
  // The ratio users ask for: moas's step of the same variants, same batch, threads and repetitions, in this run.
  log("timing moas's training step of the same variants (train-step) for the ratio")
  const { runTrainStep, TRAIN_STEP_DEFAULTS } = await import('./trainStep')
  const moas = await runTrainStep(
    { ...TRAIN_STEP_DEFAULTS, variants: cfg.variants, batch: cfg.batch, seq: cfg.seq, warmup: cfg.warmup, reps: cfg.reps, threads: cfg.threads },
    log,
  )
  for (const row of rows) {
    const m = moas.rows.find((r) => r.variant === row.variant)
    if (m) Object.assign(row, { moas: m.step, speedup: row.step.median / m.step.median })
  }
  return { config: cfg, python, torch, blas, rows }
}

export function describeTorchStep(r: TorchStepResult): string {
  const c = r.config
  const lines = [
    `torch-step: PyTorch reference model (tools/reference), paper config, batch ${c.batch} × ${c.seq}; forward + backward + torch.optim.AdamW step; warmup ${c.warmup}, median of ${c.reps}`,
    `  PyTorch ${r.torch} (${r.python}), ${c.threads} threads, BLAS: ${r.blas.join(', ') || 'unknown'}`,
    `  moas ms = @moas/trainer's step of the same variant measured in the same run (train-step); ratio = PyTorch / moas`,
    `  ${'variant'.padEnd(12)} ${'params'.padStart(11)} ${'ms/step'.padStart(8)} ${'min–max'.padStart(13)} ${'tokens/s'.padStart(9)} ${'moas ms'.padStart(8)} ${'ratio'.padStart(6)}`,
  ]
  for (const row of r.rows)
    lines.push(
      `  ${row.variant.padEnd(12)} ${row.params.toLocaleString('en-US').padStart(11)} ${row.step.median.toFixed(0).padStart(8)} ${`${row.step.min.toFixed(0)}–${row.step.max.toFixed(0)}`.padStart(13)} ${row.tokensPerS.toFixed(0).padStart(9)} ${(row.moas ? row.moas.median.toFixed(0) : '-').padStart(8)} ${(row.speedup === null ? '-' : `${row.speedup.toFixed(2)}×`).padStart(6)}`,
    )
  return lines.join('\n')
}

export function torchStepMarkdown(r: TorchStepResult): string {
  const c = r.config
  return [
    `PyTorch ${r.torch} reference model (tools/reference/moas_reference.py), paper config, batch ${c.batch} × ${c.seq}, ${c.threads} threads, BLAS ${r.blas.join(', ') || 'unknown'}; forward + backward + AdamW; warmup ${c.warmup}, median of ${c.reps}. "moas ms" is @moas/trainer's step of the same variant, measured in the same run right after; the ratio is PyTorch's median over moas's.`,
    '',
    mdTable(
      ['variant', 'params', 'PyTorch ms/step median (min–max)', 'tokens/s', 'moas ms/step', 'PyTorch / moas'],
      r.rows.map((row) => [
        row.variant,
        row.params.toLocaleString('en-US'),
        `${row.step.median.toFixed(0)} (${row.step.min.toFixed(0)}–${row.step.max.toFixed(0)})`,
        row.tokensPerS.toFixed(0),
        row.moas ? row.moas.median.toFixed(0) : '-',
        row.speedup === null ? '-' : `${row.speedup.toFixed(2)}×`,
      ]),
    ),
  ].join('\n')
}
