import { join } from 'node:path'
import { EXPORT_DTYPES, type ExportDType, exportModelFiles } from '@moas/inference'
import { loadModel, writeModelFolder } from '@moas/inference/node'
import { readLog } from '@moas/trainer/node'
import type { Command } from 'commander'
import { EXIT, UsageError } from '../errors'
import type { Io } from '../io'
import { checkOutFolder } from '../options'

export function exportCommand(program: Command, io: Io, done: (code: number) => void): void {
  program
    .command('export')
    .description('write a checkpoint as a model folder that ONNX decoder clients load (transformers.js, onnxruntime)')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory (a run directory of moas train)')
    .requiredOption('--out <dir>', 'model folder to create (must not exist, or be empty)')
    .option('--dtype <dtype>', `weights, activations and cache: ${EXPORT_DTYPES.join(' or ')}`, 'float32')
    .option('--external-data', 'weights in onnx/model.onnx_data (ONNX external data); automatic beyond 2 GiB')
    .addHelpText(
      'after',
      `
Writes config.json, generation_config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx (the
merged KV-cache decoder, weights embedded), genai_config.json and a README.md model card, atomically.
Prints one JSON line: {"out", "files", "onnx_bytes", "dtype"}.

Example:
  moas export --checkpoint runs/paper-moas --out models/moas`,
    )
    .action(async (opts) => {
      checkOutFolder(opts.out)
      if (!(EXPORT_DTYPES as readonly string[]).includes(opts.dtype)) throw new UsageError(`--dtype ${opts.dtype}: choose ${EXPORT_DTYPES.join(' or ')}`)
      const model = await loadModel(opts.checkpoint)
      // What the model card says about training: the run's data and steps, and its last val loss (log.jsonl).
      const training = model.extra.training as { data?: { name?: string; train_tokens?: number }; step?: number } | undefined
      const lastEval = readLog(join(model.where, 'log.jsonl'))
        .filter((r) => r.val_loss !== undefined)
        .at(-1)
      const card = {
        trainingData: training?.data?.name ? `${training.data.name} (${training.data.train_tokens?.toLocaleString('en-US')} training characters)` : undefined,
        steps: training?.step,
        valLoss: lastEval?.val_loss,
      }
      const files = exportModelFiles(model, { dtype: opts.dtype as ExportDType, card, externalData: opts.externalData ? true : 'auto' })
      await writeModelFolder(opts.out, files)
      const onnx = files['onnx/model.onnx'] as Uint8Array
      io.stdout(`${JSON.stringify({ out: opts.out, files: Object.keys(files), onnx_bytes: onnx.byteLength, dtype: opts.dtype })}\n`)
      done(EXIT.ok)
    })
}
