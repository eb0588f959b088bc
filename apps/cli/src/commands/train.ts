import { type GptConfig, paramCounts, resolveConfig, VARIANTS } from '@moas/gpt'
import type { Provider } from '@moas/tensor-core'
import { type Dataset, makeRunConfig, modelConfig, protocolOfRun, TrainError, type TrainPresetName, type TrainProtocol } from '@moas/trainer'
import { loadDataset, RunLock, readRun, realRunDir, train } from '@moas/trainer/node'
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
  seedInt,
  variantName,
} from '../options'

export function trainCommand(program: Command, io: Io, done: (code: number) => void): void {
  const cmd = program
    .command('train')
    .description('train one model; writes DIR/config.json, model.safetensors, tokenizer.json, log.jsonl (+ optimizer and trainer state for --resume)')
    .option('--attention <variant>', `attention variant: ${VARIANTS.join(', ')}`, variantName)
    .addOption(presetOption())
    .option('--seed <n>', 'seed of the init, batches and dropout (default 0)', seedInt)
    .option('--out <dir>', 'run directory (default runs/<attention>-<preset>-seed<seed>)')
    .option('--resume <dir>', 'continue the run in <dir> exactly where its last checkpoint left off')
  addProtocolOptions(cmd)
  cmd.addHelpText(
    'after',
    `
Examples:
  moas train --attention moas --preset smoke --steps 40 --out runs/smoke-moas
  MOAS_DATA_DIR=/data moas train --attention mha --preset paper --out runs/paper-mha
  moas train --resume runs/paper-mha --steps 1000

stdout: one JSON line per update {step, loss, ce, balance, lr, grad_norm, ms[, val_loss, eval_ms]},
then {"done": true, status, step, steps, final_val_loss, ms_per_iter, out}. Ctrl-C saves and exits with 130.`,
  )
  cmd.action(async (opts) => done(await runTrain(opts, io)))
}

interface TrainFlags extends Record<string, unknown> {
  device?: string
  attention?: string
  preset?: TrainPresetName
  seed?: number
  out?: string
  resume?: string
  dataDir?: string
  skipUnknown?: boolean
  threads?: number
  set?: Record<string, unknown>
}

async function runTrain(opts: TrainFlags, io: Io): Promise<number> {
  const flags = protocolFlags(opts)
  const model = modelFlags(opts)
  const onUnknown = opts.skipUnknown ? 'skip' : 'error'
  let protocol: TrainProtocol
  let dataset: Dataset
  let out: string
  let seed: number
  let cfg: GptConfig
  checkOutFolder(opts.out)
  checkOutFolder(opts.resume, '--resume')
  if (opts.resume) {
    out = realRunDir(opts.resume)
    if (opts.out && realRunDir(opts.out) !== out) throw new UsageError(`--resume continues in its own directory (${opts.resume}); drop --out ${opts.out}`)
    RunLock.refuseIfHeld(out)
    const saved = await readRun(out)
    const s = saved.state
    if (flags.steps !== undefined && flags.steps < s.step)
      throw new UsageError(
        `--steps ${flags.steps} is below the run's step ${s.step}: --resume continues a run to more updates; give --steps above ${s.step}, or leave it out to finish the run's ${s.steps}`,
      )
    // Flags the user typed override the saved run; train() then refuses any change to the trajectory.
    const base = opts.preset ? presetProtocol(opts.preset, {}) : protocolOfRun(s.run, s.steps, s.checkpoint_interval ?? 0)
    protocol = { ...base, ...flags }
    if (!opts.preset && flags.steps === undefined) protocol.steps = Math.max(s.steps, s.step)
    seed = opts.seed ?? s.run.seed
    if (protocol.data !== s.run.data.name)
      throw new TrainError(
        `cannot resume ${out}: the run config differs from the checkpoint's (data.name: "${s.run.data.name}" in the checkpoint, "${protocol.data}" now); resume with the same settings, or start a new run with another --out`,
      )
    dataset = await loadDataset(protocol.data, { dataDir: opts.dataDir, env: io.env, tokenizer: saved.tokenizer, onUnknown })
    cfg = opts.preset ? modelConfig(opts.preset, dataset.tokenizer.vocabSize, model) : resolveConfig({ ...s.run.model, ...model })
  } else {
    if (!opts.attention) throw new UsageError(`--attention <variant> is required (${VARIANTS.join(', ')}); or --resume <dir> to continue a run`)
    const preset = opts.preset ?? 'smoke'
    protocol = presetProtocol(preset, flags)
    seed = opts.seed ?? 0
    // Validate the model flags before loading data, so a typo fails fast.
    checkFits(modelConfig(preset, 64, model), protocol.batch_size)
    dataset = await loadDataset(protocol.data, { dataDir: opts.dataDir, env: io.env })
    cfg = checkFits(modelConfig(preset, dataset.tokenizer.vocabSize, model), protocol.batch_size)
    out = realRunDir(opts.out ?? `runs/${cfg.attention}-${preset}-seed${seed}`)
  }
  checkScheduleFlags(protocol, flags)
  checkFits(cfg, protocol.batch_size)
  const run = makeRunConfig(protocol, cfg, dataset, seed)
  const progress = new Progress(io)
  io.signal?.addEventListener('abort', () => progress.note(`moas train: ${progress.untilStop()}`), { once: true })
  try {
    const result = await train({
      out,
      run,
      steps: protocol.steps,
      checkpointInterval: protocol.checkpoint_interval,
      data: dataset,
      resume: !!opts.resume,
      signal: io.signal,
      threads: opts.threads,
      provider: opts.device as Provider,
      onStart: ({ step, steps, resumed }) => {
        const counts = paramCounts(cfg)
        progress.note(
          `moas train: ${cfg.attention}, ${counts.total.toLocaleString('en-US')} parameters, ${dataset.name} (${dataset.train.length.toLocaleString('en-US')} train / ` +
            `${dataset.val.length.toLocaleString('en-US')} val tokens), ${resumed ? `resuming at step ${step} of ${steps}` : `${steps} updates`} -> ${out}`,
        )
        progress.start(cfg.attention, steps, step)
      },
      onNote: (m) => progress.note(`moas train: ${m}`),
      onRecord: (r) => {
        progress.tick()
        progress.line(r)
        progress.update(r.step, { loss: r.loss, val: r.val_loss })
      },
    })
    progress.stop()
    progress.line({
      done: true,
      status: result.status,
      step: result.step,
      steps: result.steps,
      final_val_loss: result.finalValLoss,
      ms_per_iter: result.msPerIter,
      out,
      device: opts.device ?? 'cpu',
    })
    if (result.status === 'interrupted') {
      io.stderr(`moas train: interrupted at step ${result.step}; checkpoint saved in ${out}. Continue with: moas train --resume ${out}\n`)
      return EXIT.interrupted
    }
    return EXIT.ok
  } finally {
    progress.stop()
  }
}
