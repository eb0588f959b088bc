// @moas/inference: tokenizer, sampling, KV-cache decoding, generation and model-folder export.
// Browser-safe; file-system loading is in `@moas/inference/node`.

// The tokenizer and the loaded model live in @moas/gpt (the trainer uses them without inference); these are
// the same values, re-exported for code that imports them from here.
export {
  buildLogitsGraph,
  CharTokenizer,
  type EncodeOptions,
  fromHuggingFaceTokenizer,
  type LoadedModel,
  modelFromCheckpointFiles,
  modelFromParts,
  type OnUnknown,
  paramFeeds,
  TokenizerError,
  toHuggingFaceTokenizer,
} from '@moas/gpt'
export * from './decoder'
export * from './errors'
export * from './export'
export * from './generate'
export * from './logits'
export * from './model-folder'
export * from './report'
export * from './routing'
export * from './sampling'
