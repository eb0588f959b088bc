// @moas/inference: tokenizer, sampling, KV-cache decoding, generation and model-folder export.
// Browser-safe; file-system loading is in `@moas/inference/node`.
export * from './errors'
export * from './tokenizer'
export * from './sampling'
export * from './decoder'
export * from './generate'
export * from './logits'
export * from './model'
export * from './export'
export * from './model-folder'
export * from './routing'
export * from './report'
