import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs'
import { basename, dirname, join, resolve, sep } from 'node:path'
import { writeFileAtomic } from '@moas/gpt/node'
import { routeText, routingReport, routingStats } from '@moas/inference'
import { readLog } from '@moas/trainer/node'
import type { Command } from 'commander'
import { EXIT, UsageError } from '../errors'
import type { Io } from '../io'
import { deviceOption, positiveInt, readTextFile, threadCount } from '../options'
import { openModelSource } from './model-source'

export function analyzeCommand(program: Command, io: Io, done: (code: number) => void): void {
  program
    .command('analyze')
    .description('where the routers send characters: a self-contained HTML report with SVG charts')
    .option('--checkpoint <dir>', 'checkpoint directory (a run directory of moas train)')
    .option('--model <dir>', 'model folder written by moas export')
    .requiredOption('--text <file>', 'UTF-8 text to route')
    .requiredOption('--out <file>', 'the report to write (HTML)')
    .option('--max-chars <n>', 'analyse at most this many characters of the text (default 20000)', positiveInt, 20_000)
    .option('--skip-unknown', 'drop characters outside the vocabulary instead of refusing the text')
    .option('--threads <n>', 'ONNX Runtime intra-op threads', threadCount)
    .addOption(deviceOption())
    .addHelpText(
      'after',
      `
For routed variants (moas, moas-topk, gqe and its ablations). Per layer: the share of characters per scheme
(MoAS) or expert (GQE, per group), gate entropy and balance, routing by character class (letters, digits,
space, punctuation, after a newline, inside <unk>) and by position in the line, and the text coloured by the
choice; for a run directory, also how the shares changed over training (the routing statistics every eval
writes to log.jsonl). Prints one JSON line with the per-layer shares.

Example:
  moas analyze --checkpoint runs/paper-moas --text data/wikitext-2/valid.txt --out report.html`,
    )
    .action(async (opts) => {
      const out = reportOut(
        opts.out,
        [opts.text, opts.checkpoint, opts.model].filter((p): p is string => typeof p === 'string'),
      )
      const all = readTextFile(opts.text, '--text')
      const { session, tokenizer } = await openModelSource(opts, true)
      try {
        const input = [...all].slice(0, opts.maxChars).join('')
        const text = tokenizer.decode(tokenizer.encode(input, { onUnknown: opts.skipUnknown ? 'skip' : 'error' }))
        const vocab = new Set(tokenizer.vocab)
        const unknown = new Set([...input].filter((c) => !vocab.has(c))) // shown struck through in the report
        const choices = await routeText(session, tokenizer, text)
        const stats = routingStats(session.config, text, choices)
        // A run directory's log holds the routing statistics of every eval: how routing changed in training.
        const history = opts.checkpoint
          ? readLog(join(opts.checkpoint, 'log.jsonl'))
              .filter((r) => r.routing)
              .map((r) => ({ step: r.step, ...r.routing! }))
          : []
        writeFileAtomic(
          out,
          routingReport({ config: session.config, stats, text: input, unknown, choices, model: opts.model ?? opts.checkpoint, source: opts.text, history }),
        )
        io.stdout(
          `${JSON.stringify({ out: opts.out, characters: stats.positions, training_evals: history.length, labels: stats.labels, share_per_layer: stats.layers.map((l) => l.share.map((s) => Math.round(s * 1e4) / 1e4)), entropy_per_layer: stats.layers.map((l) => Math.round(l.entropy * 1e4) / 1e4) })}\n`,
        )
      } finally {
        await session.release()
      }
      done(EXIT.ok)
    })
}

/** What a report written by moas analyze starts with (its generator tag), to tell it from files it must not replace. */
const REPORT_MARK = '<meta name="generator" content="moas analyze">'

/**
 * --out, refused when writing it would destroy something: an input (the text, anything inside the
 * checkpoint or model folder), a directory, or an existing file that is not a report of moas analyze.
 */
function reportOut(value: string, inputs: readonly string[]): string {
  if (!value.trim()) throw new UsageError('--out is empty; name the HTML report to write, e.g. --out report.html')
  const out = resolve(value)
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : resolve(p))
  const target = existsSync(out) ? realpathSync(out) : join(real(dirname(out)), basename(out))
  for (const input of inputs) {
    const r = real(input)
    if (target === r || target.startsWith(`${r}${sep}`))
      throw new UsageError(`--out ${value} would overwrite ${target === r ? 'the input' : 'a file inside the input'} ${input}; write the report somewhere else`)
  }
  if (existsSync(out)) {
    if (statSync(out).isDirectory())
      throw new UsageError(`--out ${value} is a directory; name the HTML file to write, e.g. --out ${join(value, 'report.html')}`)
    const head = readFileSync(out, 'utf8').slice(0, 300)
    if (!head.includes(REPORT_MARK))
      throw new UsageError(`--out ${value} exists and is not a report moas analyze wrote; choose another --out, or remove it first`)
  }
  return out
}
