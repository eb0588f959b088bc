/**
 * Decode: tokens/s of one new token per row against the KV cache (@moas/inference's DecoderSession on the
 * merged decoder graph), per variant, at several context lengths, batch 1 and 8, next to the bytes the
 * cache actually holds; and, in the same run, the full-recompute path (LogitsSession: the whole context
 * through the model for every new token), whose time over the cached step is the cache's speed-up.
 * Three settings: the MoAS paper's model (every variant, contexts up to its block_size 256), GQE's main
 * setting (16 q / 8 kv heads, n_embd 1024, 2 layers) at longer contexts for the plain schemes and GQE, and
 * the same setting on the memory-efficient attention core from 1k to 32k of context (batch 1, no
 * recompute: a 32k-token recompute per new token is the prefill sweep's job), where a step's time is
 * the KV bytes it reads. Last, an exported model folder of the GQE setting run two ways (its own graph,
 * and the decoder built from its weights), to show what the exported graph's full-cache outputs cost.
 */
import { type GptConfig, resolveConfig, VARIANTS } from '@moas/gpt'
import {
  buildLogitsGraph,
  CharTokenizer,
  DecoderSession,
  exportModelFiles,
  LogitsSession,
  memoryFolderReader,
  openModelFolder,
  readModelFolder,
} from '@moas/inference'
import type { Provider } from '@moas/tensor-core'
import { initParams } from '@moas/tensor-core'
import { type Bandwidth, measureReadBandwidth } from './bandwidth'
import { PAPER_VOCAB } from './paper'
import { mdTable } from './report'
import { nowMs, summarize, type Timing } from './stats'

export interface DecodeSetting {
  name: string
  model: Omit<GptConfig, 'attention'> & { attention?: string }
  variants: string[]
  contexts: number[]
  batches: number[]
  /** The attention core (default composed); 'memory-efficient' takes prompts of one length only. */
  attention?: 'composed' | 'memory-efficient'
  /** Time the full-recompute path too (default true). */
  recompute?: boolean
  /**
   * Run the model from an exported model folder (exportModelFiles, in memory): 'exported' its own
   * onnx/model.onnx, which returns the whole cache every step; 'weights' the decoder openModelFolder
   * builds from the folder's weights (the session keeps the cache). Default: weights in memory.
   */
  folder?: 'exported' | 'weights'
}

export interface DecodeConfig {
  /** ONNX Runtime execution provider (default cpu). */
  provider?: Provider
  settings: DecodeSetting[]
  /** Timed decode steps per measurement (the context grows by one per step, from context - steps). */
  steps: number
  warmup: number
  /** Full-recompute runs per measurement (batch 1). */
  recomputeReps: number
  threads: number
  /** MiB the bandwidth measurement reads per pass (default 256: far beyond the caches). */
  bandwidthMiB?: number
}

const paper = resolveConfig({ vocab_size: PAPER_VOCAB, dropout: 0, attention: 'mha' }, 'paper')
const gqeMain = resolveConfig({ vocab_size: PAPER_VOCAB, attention: 'gqa' }, 'gqe-main')
const gqeLong = resolveConfig({ ...gqeMain, block_size: 32768 })
const gqeFolder = resolveConfig({ ...gqeMain, block_size: 8192 })

/** A decoder on `model` as the setting says: from its weights, or from an exported folder of them. */
async function decoderFor(
  setting: DecodeSetting,
  model: GptConfig,
  params: Map<string, Float32Array>,
  opts: { threads: number; provider?: Provider },
): Promise<DecoderSession> {
  if (!setting.folder) return DecoderSession.create({ config: model, params }, { ...opts, attention: setting.attention })
  // Any tokenizer of the model's vocabulary size: the bench feeds token ids, not text.
  const tokenizer = CharTokenizer.fromText(String.fromCodePoint(...Array.from({ length: model.vocab_size }, (_, i) => 0x100 + i)))
  const files = exportModelFiles({ config: model, params, tokenizer, extra: {}, where: 'bench' })
  const folder = await readModelFolder(memoryFolderReader(files), 'bench')
  return openModelFolder(folder, { ...opts, graph: setting.folder, attention: setting.folder === 'weights' ? setting.attention : undefined })
}

export const DECODE_DEFAULTS: Omit<DecodeConfig, 'threads'> = {
  settings: [
    { name: 'paper config (4 layers, 6 heads, n_embd 384)', model: paper, variants: [...VARIANTS], contexts: [32, 128, 255], batches: [1, 8] },
    {
      name: 'GQE main setting (2 layers, 16 q / 8 kv heads, n_embd 1024)',
      model: gqeMain,
      variants: ['mha', 'gqa', 'mqa', 'gqe'],
      contexts: [512, 2047],
      batches: [1],
    },
    {
      name: 'long context: GQE main setting, memory-efficient core',
      model: gqeLong,
      // moas-kv: its level cache holds each token's level (with random weights the routers' picks are arbitrary; the bytes held are measured)
      variants: ['mha', 'gqa', 'mqa', 'gqe', 'moas-kv'],
      contexts: [1024, 4096, 8192, 16384, 32768],
      batches: [1],
      attention: 'memory-efficient',
      recompute: false,
    },
    // An exported folder's graph (composed core, as exported) against the decoder built from its weights:
    // what returning the whole cache every step costs. 8k: the composed prefill's scores still fit.
    {
      name: "exported folder's graph: GQE main setting, composed core",
      model: gqeFolder,
      variants: ['gqa', 'gqe'],
      contexts: [2047, 8191],
      batches: [1],
      recompute: false,
      folder: 'exported',
    },
    {
      name: "the same folder, graph 'weights'",
      model: gqeFolder,
      variants: ['gqa', 'gqe'],
      contexts: [2047, 8191],
      batches: [1],
      recompute: false,
      folder: 'weights',
    },
  ],
  steps: 8,
  warmup: 2,
  recomputeReps: 3,
}

export interface DecodeRow {
  setting: string
  variant: string
  batch: number
  context: number
  /** One decode step (all rows of the batch). */
  step: Timing
  tokensPerS: number
  /** Bytes the cache held at the measured context, per row and position, and what kvCacheBytesPerToken says. */
  kvBytesPerToken: number
  kvBytesPerTokenModel: number
  /** Full recompute of the context for one new token (batch 1 only), and its time over the cached step. */
  recompute: Timing | null
  cacheSpeedup: number | null
  /** Bytes one step must read: every weight (float32) and the whole cache held at this context, all rows. */
  bytesPerStep: number
  /** The step's time at the measured read bandwidth, and that time over the measured step (1 = at the limit). */
  boundMs: number
  fractionOfBound: number
}

export interface DecodeResult {
  config: DecodeConfig
  rows: DecodeRow[]
  bandwidth: Bandwidth
}

export async function runDecode(cfg: DecodeConfig, log: (msg: string) => void = () => {}, variants?: string[]): Promise<DecodeResult> {
  const rows: DecodeRow[] = []
  const bandwidth = await measureReadBandwidth({ threads: cfg.threads, provider: cfg.provider, mib: cfg.bandwidthMiB })
  log(
    `read bandwidth: ${bandwidth.GBps.toFixed(1)} GB/s (plain JS ${bandwidth.jsGBps.toFixed(1)}, ONNX Runtime ReduceSum on ${cfg.threads} threads ${bandwidth.ortGBps.toFixed(1)})`,
  )
  for (const setting of cfg.settings) {
    for (const variant of setting.variants.filter((v) => !variants || variants.includes(v))) {
      const model = resolveConfig({ ...setting.model, attention: variant })
      const params = initParams(buildLogitsGraph(model), 1) as Map<string, Float32Array>
      const weightBytes = [...params.values()].reduce((n, w) => n + w.byteLength, 0)
      const session = await decoderFor(setting, model, params, { threads: cfg.threads, provider: cfg.provider })
      const recompute =
        setting.recompute === false ? null : await LogitsSession.create({ config: model, params }, { threads: cfg.threads, provider: cfg.provider })
      for (const batch of setting.batches) {
        for (const context of setting.contexts) {
          const start = Math.max(1, context - cfg.steps - cfg.warmup)
          const prompt = (b: number) => Array.from({ length: start }, (_, i) => (i * 31 + b * 7) % model.vocab_size)
          const p0 = nowMs()
          await session.prefill(Array.from({ length: batch }, (_, b) => prompt(b)))
          const prefillMs = nowMs() - p0
          const ms: number[] = []
          for (let s = 0; session.pastLength < context; s++) {
            const t0 = nowMs()
            await session.step(Array.from({ length: batch }, (_, b) => (s + b) % model.vocab_size))
            if (s >= cfg.warmup) ms.push(nowMs() - t0)
          }
          const step = summarize(ms)
          const kvBytesPerToken = session.cacheBytes / batch / session.pastLength
          const bytesPerStep = weightBytes + session.cacheBytes
          const boundMs = (bytesPerStep / (bandwidth.GBps * 1e9)) * 1000
          let full: Timing | null = null
          if (batch === 1 && recompute) {
            const ctx = prompt(0).concat(Array.from({ length: context - start }, (_, i) => i % model.vocab_size))
            const rms: number[] = []
            await recompute.next(ctx) // warm-up
            for (let i = 0; i < cfg.recomputeReps; i++) {
              const t0 = nowMs()
              await recompute.next(ctx)
              rms.push(nowMs() - t0)
            }
            full = summarize(rms)
          }
          log(
            `${variant} batch ${batch} context ${context}: ${step.median.toFixed(2)} ms/step (prefill of ${start} tokens ${prefillMs.toFixed(0)} ms)${full ? `, recompute ${full.median.toFixed(1)} ms` : ''}`,
          )
          rows.push({
            setting: setting.name,
            variant,
            batch,
            context,
            step,
            tokensPerS: batch / (step.median / 1000),
            kvBytesPerToken,
            kvBytesPerTokenModel: session.cacheBytesPerToken,
            recompute: full,
            cacheSpeedup: full ? full.median / step.median : null,
            bytesPerStep,
            boundMs,
            fractionOfBound: boundMs / step.median,
          })
        }
      }
      await session.release()
      await recompute?.release()
    }
  }
  return { config: cfg, rows, bandwidth }
}

const header = [
  'variant',
  'batch',
  'context',
  'ms/step (min–max)',
  'tokens/s',
  'KV bytes/token held',
  'MiB read/step',
  'of bound',
  'recompute ms',
  'cache speed-up',
]
const cells = (r: DecodeRow) => [
  r.variant,
  r.batch,
  r.context,
  `${r.step.median.toFixed(2)} (${r.step.min.toFixed(2)}–${r.step.max.toFixed(2)})`,
  r.tokensPerS.toFixed(0),
  `${r.kvBytesPerToken.toLocaleString('en-US')}${r.kvBytesPerToken === r.kvBytesPerTokenModel ? '' : ` (model says ${r.kvBytesPerTokenModel})`}`,
  (r.bytesPerStep / 2 ** 20).toFixed(1),
  r.fractionOfBound.toFixed(2),
  r.recompute ? r.recompute.median.toFixed(1) : '-',
  r.cacheSpeedup ? `${r.cacheSpeedup.toFixed(1)}×` : '-',
]

export function describeDecode(r: DecodeResult): string {
  const c = r.config
  const lines = [
    `decode: one new token per row against the KV cache; median of ${c.steps} steps after ${c.warmup} warm-up; full recompute median of ${c.recomputeReps} (batch 1)`,
    `  ${boundLine(r)}`,
    `  ${goalLine(r)}`,
  ]
  for (const s of c.settings) {
    const rows = r.rows.filter((row) => row.setting === s.name)
    if (!rows.length) continue
    lines.push(`  ${s.name}`)
    lines.push(`  ${header.map((h, i) => (i < 3 ? h.padEnd(i === 0 ? 14 : 7) : h.padStart(i === 3 ? 22 : 14))).join(' ')}`)
    for (const row of rows)
      lines.push(
        `  ${cells(row)
          .map((v, i) => (i < 3 ? String(v).padEnd(i === 0 ? 14 : 7) : String(v).padStart(i === 3 ? 22 : 14)))
          .join(' ')}`,
      )
  }
  return lines.join('\n')
}

export function decodeMarkdown(r: DecodeResult): string {
  const c = r.config
  const parts = [
    `One new token per row against the KV cache (median of ${c.steps} steps after ${c.warmup} warm-up), next to the full-recompute path (the whole context per new token, batch 1, median of ${c.recomputeReps}); "cache speed-up" = recompute ÷ cached step. "KV bytes/token held" is measured on the present tensors. ${boundLine(r)}`,
    '',
    goalLine(r),
  ]
  for (const s of c.settings) {
    const rows = r.rows.filter((row) => row.setting === s.name)
    if (rows.length) parts.push('', `**${s.name}**`, '', mdTable(header, rows.map(cells)))
  }
  return parts.join('\n')
}

/** The memory bound the "of bound" column is against, as measured in this run. */
function boundLine(r: DecodeResult): string {
  const b = r.bandwidth
  return `"MiB read/step": every float32 weight plus the whole cache held; "of bound": that read at ${b.GBps.toFixed(1)} GB/s (measured in this run, the better of a plain JS sum, ${b.jsGBps.toFixed(1)} GB/s, and ONNX Runtime's ReduceSum on ${r.config.threads} threads, ${b.ortGBps.toFixed(1)} GB/s, over ${(b.bytes / 2 ** 20).toFixed(0)} MiB) over the measured step: 1 is the memory limit.`
}

/** Issue 29's goal: at 8k, 16k and 32k of context, batch 1, each of these steps at ≥ 0.6 of the memory bound. */
export const BOUND_GOAL = { fraction: 0.6, minContext: 8192, variants: ['mha', 'gqa', 'gqe', 'mqa'] } as const

function goalLine(r: DecodeResult): string {
  const rows = r.rows.filter((x) => x.batch === 1 && x.context >= BOUND_GOAL.minContext && (BOUND_GOAL.variants as readonly string[]).includes(x.variant))
  const goal = `goal: ≥ ${BOUND_GOAL.fraction} of the memory bound from ${BOUND_GOAL.minContext / 1024}k of context (batch 1, ${BOUND_GOAL.variants.join(', ')})`
  if (!rows.length) return `${goal}: not measured in this run`
  const short = rows.filter((x) => x.fractionOfBound < BOUND_GOAL.fraction)
  const at = (x: DecodeRow) =>
    `${x.variant} ${x.context / 1024}k ${x.fractionOfBound.toFixed(2)} (${x.step.median.toFixed(1)} ms against ${x.boundMs.toFixed(1)} ms)`
  return short.length ? `${goal}: NOT met: ${short.map(at).join(', ')}` : `${goal}: met (${rows.map(at).join(', ')})`
}
