/** A model ready for inference: config, float32 weights by checkpoint name, and its tokenizer. */
import { CheckpointError, type CheckpointSource, decodeCheckpoint } from './checkpoint'
import type { GptConfig } from './config'
import { CharTokenizer } from './tokenizer'

export interface LoadedModel {
  config: GptConfig
  params: Map<string, Float32Array>
  tokenizer: CharTokenizer
  /** config.json's keys beside "model" (e.g. "training": the run that made it). */
  extra: Record<string, unknown>
  /** Where it came from, for messages (a directory, a URL). */
  where: string
}

/** A model from a checkpoint's files (checkpoint directory, upload or fetch); validates every part. */
export function modelFromCheckpointFiles(src: CheckpointSource): LoadedModel {
  const ck = decodeCheckpoint(src)
  return modelFromParts(ck.config, ck.params, ck.tokenizer, ck.extra, src.where)
}

/** Checks that the tokenizer JSON fits the config and assembles a LoadedModel. */
export function modelFromParts(
  config: GptConfig,
  params: Map<string, Float32Array>,
  tokenizerJson: unknown,
  extra: Record<string, unknown>,
  where: string,
): LoadedModel {
  let tokenizer: CharTokenizer
  try {
    tokenizer = CharTokenizer.fromJSON(tokenizerJson)
  } catch (e) {
    throw new CheckpointError(`${where}/tokenizer.json: ${(e as Error).message}`)
  }
  if (tokenizer.vocabSize !== config.vocab_size)
    throw new CheckpointError(`${where}: tokenizer.json has ${tokenizer.vocabSize} symbols but the model's vocab_size is ${config.vocab_size}`)
  return { config, params, tokenizer, extra, where }
}
