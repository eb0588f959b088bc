/** Node-only parts of @moas/gpt (the `@moas/gpt/node` subpath): checkpoint directories on disk. */
export { processAlive, removeOnExit, removeStaleTemporaries, writeFileAtomic } from './atomic-write'
export { loadCheckpoint, saveCheckpoint } from './checkpoint-dir'
export { FS_ERRORS, fsErrorReason } from './fs-errors'

import { loadCheckpoint } from './checkpoint-dir'
import { type LoadedModel, modelFromParts } from './loaded-model'

/** A checkpoint directory (a run directory or a bare model) as a LoadedModel. */
export async function loadModel(dir: string): Promise<LoadedModel> {
  const ck = await loadCheckpoint(dir)
  return modelFromParts(ck.config, ck.params, ck.tokenizer, ck.extra, ck.dir)
}
