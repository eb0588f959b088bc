import { generate } from '@moas/trainer'
import type { Command } from 'commander'
import { EXIT } from '../errors'
import type { Io } from '../io'
import { nonNegativeInt, nonNegativeNumber, positiveInt, seedInt } from '../options'

export function generateCommand(program: Command, io: Io, done: (code: number) => void): void {
  program
    .command('generate')
    .description('sample text from a checkpoint')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory')
    .requiredOption('--prompt <text>', 'text to continue')
    .option('--tokens <n>', 'characters to generate', nonNegativeInt, 200)
    .option('--temperature <t>', 'softmax temperature; 0 = always the most likely character', nonNegativeNumber, 1)
    .option('--top-k <k>', 'sample among the k most likely characters only', positiveInt)
    .option('--seed <n>', 'sampling seed', seedInt, 0)
    .option('--skip-unknown', 'drop prompt characters outside the vocabulary instead of refusing the prompt')
    .option('--json', 'print one JSON line {"prompt", "completion", "tokens"} instead of streaming the text')
    .option('--threads <n>', 'ONNX Runtime intra-op threads', positiveInt)
    .addHelpText('after', `
Prints the prompt followed by the sampled continuation as it is generated (or one JSON line with --json).

Example:
  moas generate --checkpoint runs/paper-moas --prompt "The history of " --tokens 300 --temperature 0.8 --top-k 40`)
    .action(async (opts) => {
      if (!opts.json) io.stdout(opts.prompt)
      const r = await generate(opts.checkpoint, {
        prompt: opts.prompt, tokens: opts.tokens, temperature: opts.temperature, topK: opts.topK, seed: opts.seed,
        onUnknown: opts.skipUnknown ? 'skip' : 'error', threads: opts.threads,
        onText: opts.json ? undefined : (piece) => io.stdout(piece),
      })
      io.stdout(opts.json ? `${JSON.stringify(r)}\n` : '\n')
      done(EXIT.ok)
    })
}
