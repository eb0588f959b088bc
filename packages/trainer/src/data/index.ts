// The trainer's data layer (browser-safe part): PRNG, the synthetic corpus, the paper's split, batch
// sampling. WikiText-2 files are read by `@moas/trainer/node`; the tokenizer is @moas/gpt's.

export * from './batches.js'
export * from './errors.js'
export * from './split.js'
export * from './synthetic.js'
export * from './text.js'
