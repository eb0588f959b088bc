/**
 * Export (no timing): per variant at the paper config with the spec's initial weights, the size of
 * onnx/model.onnx exported in float32 and in float16 (weights, activations and KV cache in float16), and
 * the largest difference between their logits for the same prompt, relative to the largest float32 logit.
 */
import { VARIANTS } from '@moas/gpt'
import {
  buildLogitsGraph,
  CharTokenizer,
  exportModelFiles,
  type LoadedModel,
  MODEL_FOLDER_FILES,
  memoryFolderReader,
  openModelFolder,
  readModelFolder,
} from '@moas/inference'
import { initParams, type Provider } from '@moas/tensor-core'
import { paperConfig } from './paper'
import { mdTable } from './report'

export interface ExportConfig {
  variants: string[]
  prompt: string
  provider?: Provider
}

export const EXPORT_DEFAULTS: ExportConfig = { variants: [...VARIANTS], prompt: 'the quick brown fox, jumps over 1234 lazy dogs.' }

export interface ExportRow {
  variant: string
  float32Bytes: number
  float16Bytes: number
  maxAbsDiff: number
  /** maxAbsDiff / max |float32 logit|. */
  relDiff: number
}

export async function runExport(cfg: ExportConfig, log: (m: string) => void = () => {}): Promise<{ config: ExportConfig; rows: ExportRow[] }> {
  const tokenizer = CharTokenizer.fromText(cfg.prompt)
  const rows: ExportRow[] = []
  for (const variant of cfg.variants) {
    // the paper preset as moas info and the other benches apply it (gqe: its default 3 groups)
    const config = paperConfig(variant, tokenizer.vocabSize)
    const model: LoadedModel = { config, params: initParams(buildLogitsGraph(config), 1) as Map<string, Float32Array>, tokenizer, extra: {}, where: 'bench' }
    const out: { bytes: number; logits: Float32Array }[] = []
    for (const dtype of ['float32', 'float16'] as const) {
      const files = exportModelFiles(model, { dtype })
      const folder = await readModelFolder(memoryFolderReader(files), 'bench')
      const session = await openModelFolder(folder, { provider: cfg.provider })
      const run = await session.prefill([[...tokenizer.encode(cfg.prompt)]])
      await session.release()
      out.push({ bytes: (files[MODEL_FOLDER_FILES.onnx] as Uint8Array).byteLength, logits: Float32Array.from(run.logits) })
    }
    let diff = 0
    let scale = 0
    for (let i = 0; i < out[0].logits.length; i++) {
      diff = Math.max(diff, Math.abs(out[0].logits[i] - out[1].logits[i]))
      scale = Math.max(scale, Math.abs(out[0].logits[i]))
    }
    log(`${variant}: ${(out[0].bytes / 1e6).toFixed(2)} MB -> ${(out[1].bytes / 1e6).toFixed(2)} MB, max |Δ logit| ${diff.toExponential(2)}`)
    rows.push({ variant, float32Bytes: out[0].bytes, float16Bytes: out[1].bytes, maxAbsDiff: diff, relDiff: diff / scale })
  }
  return { config: cfg, rows }
}

const cells = (r: ExportRow) => [
  r.variant,
  (r.float32Bytes / 1e6).toFixed(2),
  (r.float16Bytes / 1e6).toFixed(2),
  (r.float16Bytes / r.float32Bytes).toFixed(3),
  r.maxAbsDiff.toExponential(2),
  r.relDiff.toExponential(2),
]
const header = ['variant', 'float32 MB', 'float16 MB', 'ratio', 'max |Δ logit|', 'relative to max |logit|']

export function describeExport(r: { config: ExportConfig; rows: ExportRow[] }): string {
  return [
    `export: paper config, spec-init weights, prompt of ${[...r.config.prompt].length} characters; float16 = weights, activations and KV cache`,
    `  ${header.join(' | ')}`,
    ...r.rows.map((row) => `  ${cells(row).join(' | ')}`),
  ].join('\n')
}

export function exportMarkdown(r: { config: ExportConfig; rows: ExportRow[] }): string {
  return [
    `onnx/model.onnx of \`moas export\` at the paper config (4 layers, 6 heads, n_embd 384, spec-init weights) in float32 and float16 (weights, activations and KV cache in float16), and the largest logit difference for a ${[...r.config.prompt].length}-character prompt.`,
    '',
    mdTable(header, r.rows.map(cells)),
  ].join('\n')
}
