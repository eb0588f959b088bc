// @moas/inference: tokenizer, sampling, KV-cache decoding, generation and model-folder export.
// Browser-safe; file-system loading is in `@moas/inference/node`.

export * from './decoder'
export * from './errors'
export * from './export'
export * from './generate'
export * from './logits'
export * from './model'
export * from './model-folder'
export * from './report'
export * from './routing'
export * from './sampling'
export * from './tokenizer'
