/**
 * A problem with training data: missing or corrupt files, a failed download, text the tokenizer cannot
 * encode, a malformed tokenizer or sampler state. The message says what went wrong and how to fix it.
 */
export class DataError extends Error {
  override name = 'DataError'
}
