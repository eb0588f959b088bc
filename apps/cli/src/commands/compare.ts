import { resolve } from 'node:path'
import { argmax, DecoderSession } from '@moas/inference'
import type { Provider } from '@moas/tensor-core'
import { modelConfig, type TrainPresetName } from '@moas/trainer'
import { collectCompare, compare, type DecodeProber, loadDataset, readCollectedRuns, renderMarkdown } from '@moas/trainer/node'
import type { Command } from 'commander'
import { EXIT, UsageError } from '../errors'
import { type Io, Progress } from '../io'
import {
  addProtocolOptions,
  checkFits,
  checkOutFolder,
  checkScheduleFlags,
  modelFlags,
  presetOption,
  presetProtocol,
  protocolFlags,
  readTextFile,
  seedInt,
  shellWord,
  sizeInt,
  trainFlagsFor,
  variantList,
} from '../options'

export const DEFAULT_VARIANTS = ['mha', 'static-moas', 'moas']
/** Seeds by default: enough for a verdict on the quick smoke preset; one paper run per variant is already slow. */
const DEFAULT_SEEDS: Record<TrainPresetName, number> = { smoke: 3, paper: 1 }

export function compareCommand(program: Command, io: Io, done: (code: number) => void): void {
  const cmd = program
    .command('compare')
    .description('train each variant for each seed and tabulate val losses with a significance test; resumable')
    .addOption(presetOption().default('smoke'))
    .option('--variants <list>', `comma-separated variants, the first is the baseline (default ${DEFAULT_VARIANTS.join(',')})`, variantList)
    .option('--seeds <n>', 'seeds per variant: 0 .. n-1 (default 3 for smoke, 1 for paper)', sizeInt)
    .option('--first-seed <n>', 'first seed (default 0)', seedInt)
    .option('--out <dir>', 'output directory (default runs/compare-<preset>)')
    .option('--plan', 'print one `moas train` command per (variant, seed) instead of training, for any scheduler')
    .option('--collect <dirs...>', 'tabulate finished run directories trained anywhere (same protocol), instead of training')
    .option('--collect-list <file>', 'as --collect, the run directories listed one per line in this file (# comments); for long lists')
  addProtocolOptions(cmd)
  cmd.addHelpText(
    'after',
    `
Writes OUT/results.md, OUT/results.json and OUT/val_loss.svg, and prints the markdown table. Each run lives
in OUT/<variant>/seed-<n>/; rerunning the same command skips finished runs and resumes unfinished ones.
Verdicts: Welch's two-sided t-test (alpha 0.05) of each variant against the first, over seeds.

Runs are independent: --plan prints the runs as \`moas train\` commands (one per line, to a shell loop, GNU
parallel, a SLURM array or CI matrix jobs) writing OUT/<variant>/seed-<n>; then the same compare command
(without --plan) finds them finished and only tabulates, or --collect DIR... tabulates run directories
gathered from anywhere, refusing runs of different protocols.

Examples:
  moas compare --preset smoke
  moas compare --preset paper --seeds 5 --out runs/paper --plan | parallel -j 4
  moas compare --collect runs/*/seed-* --variants mha,static-moas,moas --out docs/results/paper
  MOAS_DATA_DIR=/data moas compare --preset paper --variants mha,static-moas,moas --seeds 3 --out docs/results/paper`,
  )
  cmd.action(async (opts) => {
    checkOutFolder(opts.out)
    if (opts.collectList !== undefined) {
      const listed = readTextFile(opts.collectList, '--collect-list')
        .split('\n')
        .map((l) => l.replace(/#.*/, '').trim())
        .filter(Boolean)
      if (!listed.length) throw new UsageError(`--collect-list ${opts.collectList}: no run directory listed`)
      opts.collect = [...(opts.collect ?? []), ...listed]
    }
    if (opts.collect) return done(await collectCommand(opts, io))
    const preset = opts.preset as TrainPresetName
    const protocol = presetProtocol(preset, protocolFlags(opts))
    const variants: string[] = opts.variants ?? DEFAULT_VARIANTS
    if (opts.set?.attention !== undefined)
      throw new UsageError(
        `--set attention=${opts.set.attention}: compare trains the variants of --variants (now ${variants.join(',')}); name them there and drop --set attention`,
      )
    const first: number = opts.firstSeed ?? 0
    const seeds = Array.from({ length: opts.seeds ?? DEFAULT_SEEDS[preset] }, (_, i) => first + i)
    const lastSeed = seeds[seeds.length - 1]
    if (lastSeed > 0xffffffff)
      throw new UsageError(
        `--first-seed ${first} with --seeds ${seeds.length} reaches seed ${lastSeed}, past the largest seed 4294967295 (seeds are 32-bit); lower --first-seed to at most ${0xffffffff - seeds.length + 1}`,
      )
    checkScheduleFlags(protocol, protocolFlags(opts))
    for (const v of variants) checkFits(modelConfig(preset, 64, { ...modelFlags(opts), attention: v }), protocol.batch_size) // fail fast on a bad variant or size
    const out = resolve(opts.out ?? `runs/compare-${preset}`)
    if (opts.plan) {
      const flags = trainFlagsFor(preset, protocol, opts.set)
      for (const seed of seeds)
        for (const v of variants)
          io.stdout(`${['moas', 'train', '--attention', v, '--seed', String(seed), ...flags, '--out', `${out}/${v}/seed-${seed}`].map(shellWord).join(' ')}\n`)
      io.stderr(
        `moas compare: ${variants.length * seeds.length} runs planned; when they are done, the same compare command without --plan tabulates them (it resumes unfinished ones)\n`,
      )
      return done(EXIT.ok)
    }
    const data = await loadDataset(protocol.data, { dataDir: opts.dataDir, env: io.env })
    const progress = new Progress(io)
    try {
      const result = await compare({
        out,
        variants,
        seeds,
        preset,
        protocol,
        model: modelFlags(opts),
        data,
        signal: io.signal,
        threads: opts.threads,
        provider: opts.device,
        onNote: (m) => progress.note(`moas compare: ${m}`),
        probeDecode: decodeProber(opts.threads, opts.device),
        onRun: (r) => {
          const what = r.status === 'done' ? 'finished, skipped' : r.status === 'resume' ? `resuming at step ${r.step}` : 'training'
          progress.note(`[${r.index + 1}/${r.total}] ${r.variant} seed ${r.seed}: ${what} (${r.dir})`)
          if (r.status !== 'done') progress.start(`${r.variant} s${r.seed}`, r.steps, r.step)
        },
        onRecord: (_v, _s, rec) => progress.update(rec.step, { loss: rec.loss, val: rec.val_loss }),
      })
      progress.stop()
      io.stdout(renderMarkdown(result))
      io.stderr(
        `moas compare: wrote ${out}/results.md, results.json, val_loss.svg${result.complete ? '' : ' (incomplete: rerun the same command to continue)'}\n`,
      )
      return done(result.complete ? EXIT.ok : EXIT.interrupted)
    } finally {
      progress.stop()
    }
  })
}

/** `moas compare --collect DIR…`: the table of finished runs trained anywhere. */
// biome-ignore lint/suspicious/noExplicitAny: commander's parsed options, checked key by key below
async function collectCommand(opts: Record<string, any>, io: Io): Promise<number> {
  const clash = ['plan', 'seeds', 'firstSeed', 'preset', 'set', ...Object.keys(protocolFlags(opts))].filter(
    (k) => opts[k] !== undefined && !(k === 'preset' && opts.preset === 'smoke'),
  )
  if (clash.length)
    throw new UsageError(
      `--collect reads the protocol from the runs themselves; drop ${clash.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}`,
    )
  if (!opts.out) throw new UsageError('--collect needs --out <dir>: a new folder for results.md, results.json and val_loss.svg')
  const { runs, protocol, tokenizer } = await readCollectedRuns(opts.collect as string[])
  const data = await loadDataset(protocol.data, { dataDir: opts.dataDir, env: io.env, tokenizer })
  const progress = new Progress(io)
  const out = resolve(opts.out)
  io.stderr(
    `moas compare: collecting ${runs.length} runs (${[...new Set(runs.map((r) => r.variant))].join(', ')}; seeds ${[...new Set(runs.map((r) => r.seed))].join(', ')})\n`,
  )
  const result = await collectCompare({
    runs,
    protocol,
    data,
    out,
    variants: opts.variants,
    threads: opts.threads,
    provider: opts.device,
    onNote: (m) => progress.note(`moas compare: ${m}`),
    probeDecode: decodeProber(opts.threads, opts.device),
  })
  io.stdout(renderMarkdown(result))
  io.stderr(
    `moas compare: wrote ${out}/results.md, results.json, val_loss.svg${result.complete ? '' : ` (incomplete: ${result.missing.join(', ')} not collected)`}\n`,
  )
  return EXIT.ok
}

/** Decode steps the table's tok/s is measured over, after a prompt that fills the rest of the context. */
const PROBE_STEPS = 32

/**
 * The table's decode columns: the run's final model (from its weights, the session moas generate uses)
 * prefills val text up to its context minus PROBE_STEPS, then decodes PROBE_STEPS greedy tokens, batch 1.
 * Tokens/s over the decode steps; KV bytes per token = the bytes the cache holds at the end over the
 * positions it holds (a level cache holds what each token wrote).
 */
function decodeProber(threads: number | undefined, provider: Provider | undefined): DecodeProber {
  return async (model, text) => {
    const context = model.config.block_size
    const steps = Math.min(PROBE_STEPS, context - 1)
    const session = await DecoderSession.create({ config: model.config, params: model.params }, { threads, provider })
    try {
      let step = await session.prefill([Array.from(text.subarray(0, context - steps))])
      const V = model.config.vocab_size
      const t0 = performance.now()
      for (let i = 0; i < steps; i++) step = await session.step([argmax(step.logits.subarray((step.length - 1) * V, step.length * V))])
      const ms = performance.now() - t0
      return { kv_bytes_per_token: session.cacheBytes / session.pastLength, tokens_per_s: (steps / ms) * 1000, context: session.pastLength }
    } finally {
      await session.release()
    }
  }
}
