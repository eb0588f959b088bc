/** A model, model folder or request that inference cannot use; the message names the problem and the fix. */
export class InferenceError extends Error {
  override name = 'InferenceError'
}
