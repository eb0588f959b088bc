import { resolve } from 'node:path'
import { type TrainPresetName, modelConfig } from '@moas/trainer'
import { compare, loadDataset, renderMarkdown } from '@moas/trainer/node'
import type { Command } from 'commander'
import { EXIT } from '../errors'
import { type Io, Progress } from '../io'
import { addProtocolOptions, checkFits, checkScheduleFlags, checkThreadsEnv, modelFlags, presetOption, presetProtocol, protocolFlags, seedInt, sizeInt, variantList } from '../options'

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
  addProtocolOptions(cmd)
  cmd.addHelpText('after', `
Writes OUT/results.md, OUT/results.json and OUT/val_loss.svg, and prints the markdown table. Each run lives
in OUT/<variant>/seed-<n>/; rerunning the same command skips finished runs and resumes unfinished ones.
Verdicts: Welch's two-sided t-test (alpha 0.05) of each variant against the first, over seeds.

Examples:
  moas compare --preset smoke
  MOAS_DATA_DIR=/data moas compare --preset paper --variants mha,static-moas,moas --seeds 3 --out docs/results/paper`)
  cmd.action(async (opts) => {
    const preset = opts.preset as TrainPresetName
    const protocol = presetProtocol(preset, protocolFlags(opts))
    const variants: string[] = opts.variants ?? DEFAULT_VARIANTS
    const first: number = opts.firstSeed ?? 0
    const seeds = Array.from({ length: opts.seeds ?? DEFAULT_SEEDS[preset] }, (_, i) => first + i)
    checkThreadsEnv(io.env)
    checkScheduleFlags(protocol, protocolFlags(opts))
    for (const v of variants) checkFits(modelConfig(preset, 64, { ...modelFlags(opts), attention: v })) // fail fast on a bad variant or size
    const data = await loadDataset(protocol.data, { dataDir: opts.dataDir, env: io.env })
    const out = resolve(opts.out ?? `runs/compare-${preset}`)
    const progress = new Progress(io)
    try {
      const result = await compare({
        out, variants, seeds, preset, protocol, model: modelFlags(opts), data, signal: io.signal, threads: opts.threads, provider: opts.device,
        onNote: (m) => progress.note(`moas compare: ${m}`),
        onRun: (r) => {
          const what = r.status === 'done' ? 'finished, skipped' : r.status === 'resume' ? `resuming at step ${r.step}` : 'training'
          progress.note(`[${r.index + 1}/${r.total}] ${r.variant} seed ${r.seed}: ${what} (${r.dir})`)
          if (r.status !== 'done') progress.start(`${r.variant} s${r.seed}`, r.steps, r.step)
        },
        onRecord: (_v, _s, rec) => progress.update(rec.step, { loss: rec.loss, val: rec.val_loss }),
      })
      progress.stop()
      io.stdout(renderMarkdown(result))
      io.stderr(`moas compare: wrote ${out}/results.md, results.json, val_loss.svg${result.complete ? '' : ' (incomplete: rerun the same command to continue)'}\n`)
      return done(result.complete ? EXIT.ok : EXIT.interrupted)
    } finally {
      progress.stop()
    }
  })
}
