/** The paper's model config per attention variant (the gpt package's `paper` preset, WikiText-2's 283 characters). */
import { type GptConfig, PRESETS, resolveConfig } from '@moas/gpt'

export const TRAIN_VARIANTS = ['mha', 'gqa', 'mqa', 'static-moas', 'moas', 'moas-topk', 'gqe'] as const
export const PAPER_VOCAB = 283

export function paperConfig(variant: string, vocab = PAPER_VOCAB): GptConfig {
  return resolveConfig({ ...PRESETS.paper, vocab_size: vocab, attention: variant })
}
