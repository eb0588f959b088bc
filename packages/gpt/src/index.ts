export {
  CONFIG_KEYS, ConfigError, type GptConfig, type GptConfigInput, PRESETS, type PresetName, SHARED_KV_SOURCES,
  type SharedKvSource, VARIANTS, type Variant, didYouMean, isGqe, isMoas, isRouted, kvHeadsPerLayer, queryHeadsPerToken, resolveConfig,
} from './config'
export { type BuildOptions, DECODER_IO, type DecoderTensors, type GptGraph, buildGpt } from './model'
export { ROUTED_QUERY_BLOCK } from './routed'
export { gqeSlots } from './gqe'
export { type ParamCounts, checkModelFits, estimatedParams, kvCacheBytesPerToken, paramCounts, paramShapes } from './params'
export { type SafeDType, type SafeTensor, SafetensorsError, type SafetensorsFile, readSafetensors, writeSafetensors } from './safetensors'
export {
  CHECKPOINT_FILES, type Checkpoint, CheckpointError, type CheckpointFiles, type CheckpointSource, type ParamValues, RESERVED_CHECKPOINT_FILES,
  type SaveCheckpointOptions, decodeCheckpoint, encodeCheckpoint,
} from './checkpoint'
