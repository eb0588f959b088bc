import { loadModel } from '@moas/inference/node'
import { evaluateTokens } from '@moas/trainer'
import type { Command } from 'commander'
import { EXIT } from '../errors'
import type { Io } from '../io'
import { deviceOption, positiveInt, readTextFile, threadCount } from '../options'

export function evalCommand(program: Command, io: Io, done: (code: number) => void): void {
  program
    .command('eval')
    .description('deterministic full evaluation of a text file: mean cross entropy over every target, in nats')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory (a run directory of moas train)')
    .requiredOption('--text <file>', 'UTF-8 text file to evaluate')
    .option('--skip-unknown', 'drop characters outside the vocabulary instead of refusing the text')
    .option('--batch-size <n>', 'windows per ONNX Runtime call (default 8)', positiveInt)
    .option('--threads <n>', 'ONNX Runtime intra-op threads', threadCount)
    .addOption(deviceOption())
    .addHelpText(
      'after',
      `
Windows start at 0, T, 2T, ... while start + T + 1 <= length (T = block_size); inputs are characters
[s, s+T), targets [s+1, s+T+1). Prints one JSON line: {"loss": <nats>, "bpc": <loss / ln 2>, "tokens": <targets>}

Example:
  moas eval --checkpoint runs/paper-mha --text data/wikitext-2/valid.txt`,
    )
    .action(async (opts) => {
      const text = readTextFile(opts.text, '--text')
      const model = await loadModel(opts.checkpoint)
      const tokens = model.tokenizer.encode(text, { onUnknown: opts.skipUnknown ? 'skip' : 'error' })
      const r = await evaluateTokens(model, tokens, { batchSize: opts.batchSize, threads: opts.threads, provider: opts.device })
      io.stdout(`${JSON.stringify({ loss: r.loss, bpc: r.bpc, tokens: r.tokens, device: opts.device })}\n`)
      done(EXIT.ok)
    })
}
