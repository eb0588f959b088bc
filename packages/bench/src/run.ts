/**
 * The bench runner: `pnpm bench` from the repository root (turbo builds first), or `node dist/run.js`
 * here. Prints each benchmark's figures and writes results/<bench>.json and .md.
 *
 *   node dist/run.js [--bench mlp-step,train-step,...] [--reps N] [--warmup N] [--threads N]
 *                    [--variants mha,moas] [--lengths 512,4096] [--profile] [--json] [--out DIR | --update-results] [--list]
 */
import { parseArgs } from 'node:util'
import { defaultThreads, PROVIDERS, type Provider } from '@moas/tensor-core'
import { BENCHES, type BenchContext, type BenchName, benchNames, benchRefusal, DEFAULT_BENCHES } from './benches'
import { describeMachine, machineInfo } from './machine'
import { COMMITTED_RESULTS_DIR, DEFAULT_RESULTS_DIR, writeResults } from './report'

const USAGE = `usage: node dist/run.js [options]
  --bench LIST      comma-separated benchmarks (default: ${DEFAULT_BENCHES.join(',')}); all: ${benchNames().join(',')}
  --reps N          timed runs per measurement (default: each bench's own, >= 5)
  --warmup N        untimed runs before timing (default: each bench's own)
  --threads N       ONNX Runtime intra-op threads (default: MOAS_THREADS, else one per core)
  --device NAME     ONNX Runtime execution provider: cpu (default), wasm, webgpu, cuda
  --variants LIST   train-step, decode, prefill: attention variants (default: all; prefill adds each one's baseline)
  --lengths LIST    prefill: prompt lengths in tokens (default: 512,1024,2048,4096,8192,16384,32768); attention-core: likewise (default 1024..16384); core-heads: likewise (default 4096,8192); decode: the long-context contexts
  --profile         mlp-step, train-step, prefill (each whole-model forward): also run ONNX Runtime's profiler and print time per op type and scope
  --json            print JSON lines only (progress and results), no prose
  --out DIR         where to write <bench>.json/.md (default: packages/bench/results/latest, ignored by git)
  --update-results  write into packages/bench/results, the committed figures the READMEs quote
  --list            list the benchmarks and exit`

function fail(msg: string): never {
  process.stderr.write(`bench: ${msg}\n${USAGE}\n`)
  process.exit(2)
}

function positiveInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) fail(`--${name} must be a positive integer, got '${v}'`)
  return n
}

const BENCH_OPTIONS = {
  bench: { type: 'string' },
  reps: { type: 'string' },
  warmup: { type: 'string' },
  threads: { type: 'string' },
  variants: { type: 'string' },
  lengths: { type: 'string' },
  device: { type: 'string' },
  profile: { type: 'boolean' },
  json: { type: 'boolean' },
  out: { type: 'string' },
  'update-results': { type: 'boolean' },
  list: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

async function main(): Promise<void> {
  let args: ReturnType<typeof parseArgs<{ options: typeof BENCH_OPTIONS }>>['values']
  try {
    args = parseArgs({
      // turbo/pnpm pass a literal '--' through when forwarding arguments; ignore it.
      args: process.argv.slice(2).filter((a) => a !== '--'),
      options: BENCH_OPTIONS,
    }).values
  } catch (e) {
    fail((e as Error).message)
  }
  if (args.help) return void process.stdout.write(`${USAGE}\n`)
  if (args.list) {
    for (const name of benchNames())
      process.stdout.write(`${name.padEnd(12)} ${BENCHES[name].about}${DEFAULT_BENCHES.includes(name) ? '' : ' (not in the default run)'}\n`)
    return
  }
  const names = (
    args.bench
      ? args.bench
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : DEFAULT_BENCHES
  ) as BenchName[]
  for (const n of names) if (!(n in BENCHES)) fail(`unknown benchmark '${n}'; choose from ${benchNames().join(', ')}`)
  const threads = positiveInt('threads', args.threads) ?? defaultThreads()
  const lengths = args.lengths?.split(',').map((s) => positiveInt('lengths', s.trim())!)
  const provider = (args.device ?? 'cpu') as Provider
  if (!PROVIDERS.includes(provider)) fail(`unknown --device '${args.device}'; choose from ${PROVIDERS.join(', ')}`)
  for (const n of names) {
    const refusal = benchRefusal(n, provider, !!args.profile)
    if (refusal) fail(refusal)
  }
  // tensor-core's Session reads MOAS_THREADS for its default; set it so every session agrees.
  process.env.MOAS_THREADS = String(threads)

  const json = !!args.json
  const say = (text: string) => {
    if (!json) process.stdout.write(`${text}\n`)
  }
  const emit = (obj: object) => {
    if (json) process.stdout.write(`${JSON.stringify(obj)}\n`)
  }
  const machine = machineInfo(threads)
  say(`moas bench — ${describeMachine(machine)}, device ${provider}`)
  emit({ event: 'machine', ...machine, device: provider })

  const ctx: BenchContext = {
    threads,
    provider,
    reps: positiveInt('reps', args.reps),
    warmup: positiveInt('warmup', args.warmup),
    variants: args.variants
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    lengths,
    profile: !!args.profile,
    progress: (bench, message) => {
      say(`  [${bench}] ${message}`)
      emit({ event: 'progress', bench, message })
    },
  }
  let failed = 0
  for (const name of names) {
    const t0 = performance.now()
    const before = machineInfo(threads)
    say(`\n== ${name}: ${BENCHES[name].about}`)
    emit({ event: 'start', bench: name })
    try {
      const out = await BENCHES[name].run(ctx)
      // Load average when the bench started and when it ended: other work on the machine skews timings.
      const files = writeResults(
        args.out ?? (args['update-results'] ? COMMITTED_RESULTS_DIR : DEFAULT_RESULTS_DIR),
        name,
        {
          ...before,
          loadAvgAfter: machineInfo(threads).loadAvg,
          device: (BENCHES[name] as { devices?: unknown }).devices === 'none' ? 'none (no sessions)' : provider,
        },
        out.result,
        out.markdown,
        'files' in out ? out.files : undefined,
      )
      say(`\n${out.text}\n  wrote ${files.json} and ${files.md} (${((performance.now() - t0) / 1000).toFixed(0)} s)`)
      emit({ event: 'result', bench: name, seconds: (performance.now() - t0) / 1000, result: out.result, files })
    } catch (e) {
      failed++
      const msg = (e as Error).message
      say(`  ${name} failed: ${msg}`)
      emit({ event: 'error', bench: name, message: msg })
    }
  }
  if (failed) process.exitCode = 1
}

await main()
