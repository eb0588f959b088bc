// Node-only parts of @moas/trainer (the `@moas/trainer/node` subpath): run directories, WikiText-2 on
// disk, multi-seed comparisons, evaluation of a checkpoint directory.

export * from './compare'
export * from './data/load'
export * from './data/wikitext'
export * from './evaluate-node'
export { RunLock, realRunDir } from './run-lock'
export * from './train'
