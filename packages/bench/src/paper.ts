/** The paper's model config per attention variant (the gpt package's `paper` preset, WikiText-2's 283 characters). */
import { type GptConfig, MAIN_VARIANTS, resolveConfig } from '@moas/gpt'

/** The variants a paper-config sweep trains: the registry's main variants (no ablations). */
export const TRAIN_VARIANTS = MAIN_VARIANTS
export const PAPER_VOCAB = 283

export function paperConfig(variant: string, vocab = PAPER_VOCAB): GptConfig {
  // the preset as moas info and moas train apply it: GQE then takes its own default groups (n_head / 2 = 3)
  return resolveConfig({ vocab_size: vocab, attention: variant }, 'paper')
}
