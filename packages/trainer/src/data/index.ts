// The trainer's data layer: tokenizer, datasets, and batch sampling.
export * from './errors.js'
export * from './prng.js'
export * from './charTokenizer.js'
export * from './wikitext.js'
export * from './synthetic.js'
export * from './batches.js'
