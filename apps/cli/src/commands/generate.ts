import { type GenerateResult, generate } from '@moas/inference'
import type { Command } from 'commander'
import { EXIT, UsageError } from '../errors'
import type { Io } from '../io'
import { deviceOption, nonNegativeInt, nonNegativeNumber, positiveInt, readTextFile, seedInt, threadCount } from '../options'
import { openModelSource } from './model-source'

const graphChoice = (v: string) => {
  if (v !== 'exported' && v !== 'weights')
    throw new UsageError(`--graph ${v}: choose exported (the folder's onnx/model.onnx) or weights (built from its weights)`)
  return v
}

const probability = (v: string) => {
  const p = Number(v)
  if (!(p > 0 && p <= 1)) throw new UsageError(`--top-p ${v}: must be a number in (0, 1]`)
  return p
}

export function generateCommand(program: Command, io: Io, done: (code: number) => void): void {
  program
    .command('generate')
    .description('generate text with the KV cache, from a checkpoint or an exported model folder')
    .option('--checkpoint <dir>', 'checkpoint directory (a run directory of moas train)')
    .option('--model <dir>', 'model folder written by moas export')
    .option('--prompt <text>', 'text to continue')
    .option('--prompt-file <file>', 'text to continue, read from this UTF-8 file (the whole file is one prompt)')
    .option('--prompts <file>', 'a batch: one prompt per line of this UTF-8 file (left-padded into one batch)')
    .option('--tokens <n>', 'characters to generate per prompt', nonNegativeInt, 200)
    .option('--temperature <t>', 'softmax temperature; 0 = always the most likely character', nonNegativeNumber, 1)
    .option('--top-k <k>', 'sample among the k most likely characters only', positiveInt)
    .option('--top-p <p>', 'sample among the most likely characters whose probability reaches p', probability)
    .option('--seed <n>', 'sampling seed', seedInt, 0)
    .option('--skip-unknown', 'drop prompt characters outside the vocabulary instead of refusing the prompt')
    .option('--json', 'print one JSON line per prompt and a summary line instead of streaming the text')
    .option(
      '--graph <which>',
      "with --model: 'exported' runs the folder's onnx/model.onnx (default); 'weights' builds the decoder from its weights, keeps the KV cache in the session (faster at long contexts, same text)",
      graphChoice,
    )
    .option('--threads <n>', 'ONNX Runtime intra-op threads', threadCount)
    .addOption(deviceOption())
    .addHelpText(
      'after',
      `
Prefills the prompt(s) in one run, then decodes one character per step against the KV cache. One prompt
streams: the prompt, then each character as it is sampled. Several prompts (--prompts) print each
completion when done. The last line (with --json) is a summary: prefill and decode tokens/s and the bytes
the KV cache held. Past block_size characters the window slides (the cache is rebuilt from the last
block_size / 2 characters).

Examples:
  moas generate --checkpoint runs/paper-moas --prompt "The history of " --tokens 300 --temperature 0.8 --top-k 40
  moas generate --model models/moas --prompts prompts.txt --temperature 0 --json
  moas generate --model models/gqe --graph weights --prompt "the " --tokens 2000`,
    )
    .action(async (opts) => {
      const given = [opts.prompt, opts.promptFile, opts.prompts].filter((p) => p !== undefined).length
      if (given !== 1) throw new UsageError('give exactly one of --prompt TEXT, --prompt-file FILE or --prompts FILE')
      const prompts: string[] =
        opts.prompt !== undefined
          ? [opts.prompt]
          : opts.promptFile !== undefined
            ? [readTextFile(opts.promptFile, '--prompt-file')]
            : readTextFile(opts.prompts, '--prompts')
                .split('\n')
                .filter((l) => l.length > 0)
      if (prompts[0] === '' && opts.promptFile !== undefined) throw new UsageError(`--prompt-file ${opts.promptFile}: the file is empty`)
      if (prompts.length === 0) throw new UsageError(`--prompts ${opts.prompts}: no non-empty line`)
      if (opts.graph !== undefined && opts.model === undefined)
        throw new UsageError('--graph applies to --model (an exported folder); a --checkpoint always builds the graph from its weights')
      const { session: decoder, tokenizer } = await openModelSource(opts)
      const onUnknown = opts.skipUnknown ? 'skip' : 'error'
      for (const p of prompts) tokenizer.encode(p, { onUnknown }) // refuse a bad prompt before printing anything
      const stream = prompts.length === 1 && !opts.json
      let r: GenerateResult
      try {
        if (stream) io.stdout(prompts[0])
        r = await generate(decoder, tokenizer, prompts, {
          maxNewTokens: opts.tokens,
          temperature: opts.temperature,
          topK: opts.topK,
          topP: opts.topP,
          seed: opts.seed,
          onUnknown,
          onToken: stream ? (t) => io.stdout(t.text) : undefined,
        })
      } finally {
        await decoder.release()
      }
      const perSecond = (n: number, ms: number) => (ms > 0 ? Math.round((n / ms) * 1000 * 10) / 10 : null)
      const summary = {
        prompts: prompts.length,
        tokens: opts.tokens,
        prefill_tokens: r.prefill.tokens,
        prefill_tokens_per_s: perSecond(r.prefill.tokens, r.prefill.ms),
        decode_tokens: r.decode.tokens,
        decode_tokens_per_s: perSecond(r.decode.tokens, r.decode.ms),
        kv_cache_bytes: r.cacheBytes,
        window_slides: r.slides,
        device: decoder.provider,
        graph: opts.model !== undefined ? (opts.graph ?? 'exported') : 'weights',
      }
      if (opts.json) {
        prompts.forEach((p, i) => io.stdout(`${JSON.stringify({ prompt: p, completion: r.completions[i], tokens: r.ids[i].length })}\n`))
        io.stdout(`${JSON.stringify(summary)}\n`)
      } else if (stream) io.stdout('\n')
      else prompts.forEach((p, i) => io.stdout(`${p}${r.completions[i]}\n`))
      done(EXIT.ok)
    })
}
