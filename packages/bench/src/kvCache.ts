/**
 * KV-cache size per variant (no timing): bytes of K and V cached per token, from gpt's
 * kvCacheBytesPerToken (2 · n_layer · KV heads · head size · 4 bytes for float32), at the paper config and
 * at the prefill benchmark's GQE setting. MoAS variants cache every branch (H + G + 1 heads per layer);
 * moas-kv holds each token's chosen level, on average kv_budget of MHA's bytes (the decode bench measures it).
 */
import { type GptConfig, kvCacheBytesPerToken, kvHeadsPerLayer, variantSpec } from '@moas/gpt'
import { paperConfig, TRAIN_VARIANTS } from './paper'
import { PREFILL_DEFAULTS } from './prefill'
import { prefillGptConfig } from './prefillWorker'
import { mdTable } from './report'

export interface KvRow {
  setting: string
  variant: string
  kvHeadsPerLayer: number
  bytesPerToken: number
  /** MiB for a full context of block_size tokens, batch 1. */
  mibPerContext: number
  vsMha: number
}

export function kvCacheTable(): KvRow[] {
  const rows: KvRow[] = []
  const add = (setting: string, cfgs: GptConfig[]) => {
    const mha = cfgs.find((c) => c.attention === 'mha')!
    for (const c of cfgs) {
      // moas-kv: the bytes its routed levels hold at its budget (its exported cache tensors hold MHA's)
      const bytes = kvCacheBytesPerToken(c) * (variantSpec(c.attention).expectedKvFraction?.(c) ?? 1)
      rows.push({
        setting,
        variant: variantSpec(c.attention).expectedKvFraction ? `${c.attention} (kv_budget ${c.kv_budget})` : c.attention,
        kvHeadsPerLayer: kvHeadsPerLayer(c),
        bytesPerToken: bytes,
        mibPerContext: (bytes * c.block_size) / 2 ** 20,
        vsMha: bytes / kvCacheBytesPerToken(mha),
      })
    }
  }
  add(
    'paper (4 layers, 6 heads, 384 wide, block 256)',
    TRAIN_VARIANTS.map((v) => paperConfig(v)),
  )
  const p = PREFILL_DEFAULTS.settings.gqe
  const T = Math.max(...PREFILL_DEFAULTS.lengths)
  add(
    `GQE setting (${p.n_layer} layers, ${p.n_head} q / ${p.n_kv_head} kv heads, ${p.n_embd} wide, block ${T})`,
    ['mha', 'gqa', 'mqa', 'gqe'].map((v) => prefillGptConfig(v, p, T)),
  )
  return rows
}

export function describeKvCache(rows: readonly KvRow[]): string {
  const lines = ['kv-cache: bytes of K and V cached per token (float32), whole model']
  let setting = ''
  for (const r of rows) {
    if (r.setting !== setting) {
      setting = r.setting
      lines.push(
        `  ${setting}`,
        `    ${'variant'.padEnd(12)} ${'KV heads/layer'.padStart(14)} ${'bytes/token'.padStart(12)} ${'MiB/context'.padStart(12)} ${'vs mha'.padStart(7)}`,
      )
    }
    lines.push(
      `    ${r.variant.padEnd(12)} ${String(r.kvHeadsPerLayer).padStart(14)} ${r.bytesPerToken.toLocaleString('en-US').padStart(12)} ${r.mibPerContext.toFixed(2).padStart(12)} ${`${r.vsMha.toFixed(2)}×`.padStart(7)}`,
    )
  }
  return lines.join('\n')
}

export function kvCacheMarkdown(rows: readonly KvRow[]): string {
  return [
    'Bytes of K and V cached per token for the whole model (float32; 2 · n_layer · KV heads · head size · 4). MiB/context = one full block_size context, batch 1.',
    '',
    mdTable(
      ['setting', 'variant', 'KV heads/layer', 'bytes/token', 'MiB/context', 'vs mha'],
      rows.map((r) => [r.setting, r.variant, r.kvHeadsPerLayer, r.bytesPerToken.toLocaleString('en-US'), r.mibPerContext.toFixed(2), `${r.vsMha.toFixed(2)}×`]),
    ),
  ].join('\n')
}
