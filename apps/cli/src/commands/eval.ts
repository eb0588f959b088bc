import { existsSync, readFileSync, statSync } from 'node:fs'
import { loadModel } from '@moas/inference/node'
import { evaluateTokens } from '@moas/trainer'
import type { Command } from 'commander'
import { EXIT, UsageError } from '../errors'
import type { Io } from '../io'
import { deviceOption, positiveInt, threadCount } from '../options'

/** A text file's contents, or a one-line error naming the file. */
export function readTextFile(path: string, flag: string): string {
  if (!existsSync(path)) throw new UsageError(`${flag} ${path}: no such file`)
  if (!statSync(path).isFile()) throw new UsageError(`${flag} ${path}: not a file`)
  const bytes = readFileSync(path)
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    const at = firstInvalidUtf8(bytes)
    const where = at < bytes.length ? `invalid byte 0x${bytes[at].toString(16).padStart(2, '0')} at offset ${at}` : 'an invalid UTF-8 sequence'
    throw new UsageError(`${flag} ${path}: not UTF-8 text (${where}); convert it first, e.g. iconv -f latin1 -t utf-8`)
  }
}

/** Offset of the lead byte of the first sequence that is not valid UTF-8 (for the message). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]
    const n = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0
    if (n === 0 || i + n > bytes.length) return i
    for (let j = 1; j < n; j++) if ((bytes[i + j] & 0xc0) !== 0x80) return i
    i += n
  }
  return bytes.length
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
