/** What a figure was measured on: printed with every benchmark and stored in every results file. */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, realpathSync } from 'node:fs'
import { createRequire } from 'node:module'
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface MachineInfo {
  date: string
  cpu: string
  /** Logical cores the OS reports. */
  cores: number
  memGiB: number
  node: string
  ort: string
  /** The moas version (@moas/bench's package version) and the git commit the figures were measured at. */
  moas: string
  commit: string
  /** Intra-op threads the sessions use (MOAS_THREADS, else one per core). */
  threads: number
  /** 1/5/15-minute load averages when the run started; other work on a shared machine skews timings. */
  loadAvg: number[]
  /** Load averages when the run ended (results files only). */
  loadAvgAfter?: number[]
  /** ONNX Runtime execution provider the sessions ran on (results files only). */
  device?: string
}

export function machineInfo(threads: number): MachineInfo {
  return {
    date: new Date().toISOString(),
    cpu: cpuModel(),
    cores: availableParallelism(),
    memGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    ort: ortVersion(),
    moas: moasVersion(),
    commit: gitCommit(),
    threads,
    loadAvg: loadavg().map((x) => Math.round(x * 100) / 100),
  }
}

/**
 * CPU model, family/model numbers and widest SIMD from /proc/cpuinfo: VMs often report only "AMD EPYC",
 * and the SIMD width (AVX2 vs AVX-512) sets the GEMM peak. Falls back to os.cpus().
 */
function cpuModel(): string {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8')
    const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.+)$`, 'm').exec(text)?.[1]?.trim()
    const model = field('model name')
    const flags = (field('flags') ?? '').split(' ')
    const simd = flags.includes('avx512f') ? 'AVX-512' : flags.includes('avx2') ? 'AVX2, no AVX-512' : 'no AVX2'
    if (model) return `${model} (family ${field('cpu family')} model ${field('model')}, ${simd})`
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? 'unknown'
}

/**
 * A require() that resolves from tensor-core's package: onnxruntime-node is tensor-core's dependency, not
 * bench's. Found by walking up to node_modules/@moas/tensor-core rather than import.meta.resolve, which
 * vitest's module runner does not provide.
 */
export function tensorCoreRequire(): NodeRequire {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', '@moas', 'tensor-core', 'package.json')
    if (existsSync(candidate)) return createRequire(realpathSync(candidate))
    if (dirname(dir) === dir) throw new Error('bench: @moas/tensor-core is not installed next to @moas/bench; run pnpm install')
  }
}

/** onnxruntime-node's version, resolved from tensor-core (which depends on it; bench does not directly). */
function ortVersion(): string {
  try {
    return tensorCoreRequire()('onnxruntime-node/package.json').version as string
  } catch {
    return 'unknown'
  }
}

/** @moas/bench's version (every package of the monorepo is versioned together by changesets). */
function moasVersion(): string {
  try {
    return (JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

/** The checkout's commit, with "+changes" when tracked files differ from it; "unknown" outside a git checkout. */
function gitCommit(): string {
  const git = (args: string[]) =>
    execFileSync('git', args, { cwd: dirname(fileURLToPath(import.meta.url)), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  try {
    const head = git(['rev-parse', '--short=12', 'HEAD'])
    return git(['status', '--porcelain', '--untracked-files=no']) ? `${head}+changes` : head
  } catch {
    return 'unknown'
  }
}

export function describeMachine(m: MachineInfo): string {
  return `moas ${m.moas ?? 'unknown'} at ${m.commit ?? 'unknown'}; ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, Node ${m.node}, onnxruntime-node ${m.ort}, ${m.threads} intra-op thread${m.threads > 1 ? 's' : ''}, load ${m.loadAvg.join(' ')}${m.loadAvgAfter ? ` at start, ${m.loadAvgAfter.join(' ')} at end` : ''}`
}
