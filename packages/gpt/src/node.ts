/** Node-only parts of @moas/gpt (the `@moas/gpt/node` subpath): checkpoint directories on disk. */
export { loadCheckpoint, saveCheckpoint } from './checkpoint-dir'
