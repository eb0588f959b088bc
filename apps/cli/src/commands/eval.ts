import { existsSync, readFileSync, statSync } from 'node:fs'
import { loadModel } from '@moas/inference/node'
import { evaluateTokens } from '@moas/trainer'
import type { Command } from 'commander'
import { EXIT, UsageError } from '../errors'
import type { Io } from '../io'
import { positiveInt, threadCount } from '../options'

/** A text file's contents, or a one-line error naming the file. */
export function readTextFile(path: string, flag: string): string {
  if (!existsSync(path)) throw new UsageError(`${flag} ${path}: no such file`)
  if (!statSync(path).isFile()) throw new UsageError(`${flag} ${path}: not a file`)
  const bytes = readFileSync(path)
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    const at = firstInvalidUtf8(bytes)
    throw new UsageError(`${flag} ${path}: not UTF-8 text (invalid byte 0x${bytes[at]?.toString(16).padStart(2, '0')} at offset ${at}); convert it first, e.g. iconv -f latin1 -t utf-8`)
  }
}

/** Offset of the first byte that does not decode as UTF-8 (for the message). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let lo = 0
  let hi = bytes.length
  while (hi - lo > 1) { // the longest prefix that decodes (stream: a split sequence at its end is no error)
    const mid = (lo + hi) >> 1
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, mid), { stream: true })
      lo = mid
    } catch {
      hi = mid
    }
  }
  return lo
}

export function evalCommand(program: Command, io: Io, done: (code: number) => void): void {
  program
    .command('eval')
    .description('deterministic full evaluation of a text file: mean cross entropy over every target, in nats')
    .requiredOption('--checkpoint <dir>', 'checkpoint directory (a run directory of moas train)')
    .requiredOption('--text <file>', 'UTF-8 text file to evaluate')
    .option('--skip-unknown', 'drop characters outside the vocabulary instead of refusing the text')
    .option('--batch-size <n>', 'windows per ONNX Runtime call (default 8)', positiveInt)
    .option('--threads <n>', 'ONNX Runtime intra-op threads', threadCount)
    .addHelpText('after', `
Windows start at 0, T, 2T, ... while start + T + 1 <= length (T = block_size); inputs are characters
[s, s+T), targets [s+1, s+T+1). Prints one JSON line: {"loss": <nats>, "bpc": <loss / ln 2>, "tokens": <targets>}

Example:
  moas eval --checkpoint runs/paper-mha --text data/wikitext-2/valid.txt`)
    .action(async (opts) => {
      const text = readTextFile(opts.text, '--text')
      const model = await loadModel(opts.checkpoint)
      const tokens = model.tokenizer.encode(text, { onUnknown: opts.skipUnknown ? 'skip' : 'error' })
      const r = await evaluateTokens(model, tokens, { batchSize: opts.batchSize, threads: opts.threads })
      io.stdout(`${JSON.stringify({ loss: r.loss, bpc: r.bpc, tokens: r.tokens })}\n`)
      done(EXIT.ok)
    })
}
