/**
 * moas's runtime against transformers.js on the same exported folder, in the same process: greedy
 * decoding after a long prompt (2k and 8k characters of context) at the GQE main setting. Both must
 * write the same text; the figures are decode tokens/s (prefill apart), from the median of several runs.
 * transformers.js runs the folder's own graph through onnxruntime-node and gets the whole KV cache back
 * every step (the decoder-client format); moas runs the decoder built from the folder's weights with the
 * cache kept in its session (graph 'weights'), and, for reference, the folder's own graph too.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { buildLogitsGraph, CharTokenizer, type GptConfig, resolveConfig } from '@moas/gpt'
import { exportModelFiles, generate, memoryFolderReader, openModelFolder, readModelFolder } from '@moas/inference'
import { initParams, type Provider } from '@moas/tensor-core'
import { PAPER_VOCAB } from './paper'
import { nowMs, summarize, type Timing } from './stats'

export interface JsDecodeConfig {
  variant: string
  contexts: number[]
  /** Tokens generated per run; decode tokens/s = (tokens − 1) / (time(tokens) − time(1)). */
  tokens: number
  reps: number
  threads: number
  provider: Provider
  /** Model sizes over the GQE main setting's (tests use a small model). */
  sizes?: Partial<Pick<GptConfig, 'n_layer' | 'n_head' | 'n_kv_head' | 'n_embd'>>
}

export const JS_DECODE_DEFAULTS: Omit<JsDecodeConfig, 'threads' | 'provider'> = { variant: 'gqe', contexts: [2048, 8192], tokens: 17, reps: 3 }

/** The goal of issue 29: moas at least twice as fast as transformers.js at 8k of context. */
export const JS_DECODE_GOAL = { context: 8192, ratio: 2 } as const

export interface JsDecodeRow {
  context: number
  runtime: string
  /** ms for a run generating 1 token (the prefill, mostly) and for `tokens` tokens. */
  oneToken: Timing
  all: Timing
  decodeTokensPerS: number
  sameText: boolean
}

export interface JsDecodeResult {
  config: JsDecodeConfig
  transformersVersion: string
  rows: JsDecodeRow[]
}

export async function runJsDecode(cfg: JsDecodeConfig, log: (msg: string) => void = () => {}): Promise<JsDecodeResult> {
  const contextMax = Math.max(...cfg.contexts)
  const config = resolveConfig({ vocab_size: PAPER_VOCAB, attention: cfg.variant, block_size: contextMax, ...cfg.sizes }, 'gqe-main')
  const params = initParams(buildLogitsGraph(config), 1) as Map<string, Float32Array>
  // Characters of the vocabulary as text (transformers.js tokenizes text; moas encodes the same characters).
  const alphabet = Array.from({ length: config.vocab_size }, (_, i) => String.fromCodePoint(0x100 + i))
  const tokenizer = CharTokenizer.fromText(alphabet.join(''))
  const files = exportModelFiles({ config, params, tokenizer, extra: {}, where: 'bench' })
  const work = mkdtempSync(join(tmpdir(), 'moas-jsdecode-'))
  const name = 'model'
  for (const [path, data] of Object.entries(files)) {
    mkdirSync(dirname(join(work, name, path)), { recursive: true })
    writeFileSync(join(work, name, path), data)
  }
  const { env, pipeline } = await import('@huggingface/transformers')
  env.allowRemoteModels = false
  env.localModelPath = work
  const folder = await readModelFolder(memoryFolderReader(files), 'bench')
  const rows: JsDecodeRow[] = []
  try {
    for (const context of cfg.contexts) {
      const promptLength = context - cfg.tokens
      const prompt = Array.from({ length: promptLength }, (_, i) => alphabet[(i * 31 + 7) % alphabet.length]).join('')
      const runtimes: [string, (tokens: number) => Promise<string>, () => Promise<void>][] = []
      const generator = await pipeline('text-generation', name, { dtype: 'fp32', device: 'cpu', session_options: { intraOpNumThreads: cfg.threads } })
      runtimes.push([
        'transformers.js',
        async (tokens) => {
          const [out] = (await generator(prompt, { max_new_tokens: tokens, do_sample: false })) as { generated_text: string }[]
          return out.generated_text.slice(prompt.length)
        },
        () => generator.dispose(),
      ])
      for (const graph of ['weights', 'exported'] as const) {
        const session = await openModelFolder(folder, { graph, threads: cfg.threads, provider: cfg.provider })
        runtimes.push([
          `moas (graph '${graph}')`,
          async (tokens) => (await generate(session, tokenizer, [prompt], { maxNewTokens: tokens, temperature: 0 })).completions[0],
          () => session.release(),
        ])
      }
      let reference: string | null = null
      for (const [runtime, run, release] of runtimes) {
        const timed = async (tokens: number) => {
          const ms: number[] = []
          let text = ''
          await run(tokens) // warm-up
          for (let i = 0; i < cfg.reps; i++) {
            const t0 = nowMs()
            text = await run(tokens)
            ms.push(nowMs() - t0)
          }
          return { timing: summarize(ms), text }
        }
        const one = await timed(1)
        const all = await timed(cfg.tokens)
        await release()
        reference ??= all.text
        const decodeTokensPerS = (cfg.tokens - 1) / ((all.timing.median - one.timing.median) / 1000)
        rows.push({ context, runtime, oneToken: one.timing, all: all.timing, decodeTokensPerS, sameText: all.text === reference })
        log(
          `${runtime} at ${context}: ${decodeTokensPerS.toFixed(1)} decode tokens/s (1 token ${one.timing.median.toFixed(0)} ms, ${cfg.tokens} tokens ${all.timing.median.toFixed(0)} ms)`,
        )
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
  return { config: cfg, transformersVersion: env.version, rows }
}

function goalLine(r: JsDecodeResult): string {
  const at = r.rows.filter((x) => x.context === JS_DECODE_GOAL.context)
  const tjs = at.find((x) => x.runtime === 'transformers.js')
  const best = at.filter((x) => x.runtime !== 'transformers.js').sort((a, b) => b.decodeTokensPerS - a.decodeTokensPerS)[0]
  if (!tjs || !best) return `goal (moas ≥ ${JS_DECODE_GOAL.ratio}× transformers.js at ${JS_DECODE_GOAL.context}): not measured in this run`
  const ratio = best.decodeTokensPerS / tjs.decodeTokensPerS
  const met = ratio >= JS_DECODE_GOAL.ratio
  return `goal (moas ≥ ${JS_DECODE_GOAL.ratio}× transformers.js at ${JS_DECODE_GOAL.context}): ${met ? 'met' : 'NOT met'}, ${best.runtime} ${ratio.toFixed(2)}×${met ? '' : ` (transformers.js ${tjs.all.median.toFixed(0)} ms for ${r.config.tokens} tokens, moas ${best.all.median.toFixed(0)} ms)`}`
}

const table = (r: JsDecodeResult) => {
  const head = ['context', 'runtime', 'decode tokens/s', '1 token ms (median)', `${r.config.tokens} tokens ms (median)`, 'same text']
  const rows = r.rows.map((x) => [
    x.context,
    x.runtime,
    x.decodeTokensPerS.toFixed(1),
    x.oneToken.median.toFixed(0),
    x.all.median.toFixed(0),
    x.sameText ? 'yes' : 'NO',
  ])
  return { head, rows }
}

export function describeJsDecode(r: JsDecodeResult): string {
  const { head, rows } = table(r)
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)))
  const line = (cells: (string | number)[]) => `  ${cells.map((c, i) => String(c).padEnd(widths[i])).join('  ')}`
  return [
    `  ${r.config.variant}, GQE main setting (2 layers, 16 q heads, n_embd 1024), greedy, transformers.js ${r.transformersVersion}, ${r.config.reps} runs each`,
    line(head),
    ...rows.map(line),
    `  ${goalLine(r)}`,
  ].join('\n')
}

export function jsDecodeMarkdown(r: JsDecodeResult): string {
  const { head, rows } = table(r)
  return [
    `## moas vs transformers.js, greedy decoding on the same exported folder (${r.config.variant}, GQE main setting)`,
    '',
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
    '',
    goalLine(r),
    '',
  ].join('\n')
}
