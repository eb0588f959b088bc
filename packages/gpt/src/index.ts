export {
  CONFIG_KEYS, ConfigError, type GptConfig, type GptConfigInput, KV_LEVEL_WEIGHTS, type KvLevelWeights, PRESETS, type PresetName, SHARED_KV_SOURCES,
  type SharedKvSource, didYouMean, resolveConfig,
} from './config'
export {
  type AttentionBuilder, type AttentionCall, MAIN_VARIANTS, OPTIONAL_CONFIG_KEYS, type OptionalConfigKey, VARIANTS, VARIANT_TABLE, type Variant, type VariantFamily,
  type VariantSpec, choiceLabels, gqeSlots, isGqe, isMoas, isRouted, kvCacheLayout, kvHeadsPerLayer, queryHeadsPerToken, routingGroups, variantSpec,
} from './variants'
export { MOAS_SCHEMES, type Scheme } from './moas'
export { KV_BUDGET_TARGET, kvBudgetTarget, levelCosts } from './moasKv'
export type { GqeMode } from './gqe'
export { type BuildOptions, DECODER_IO, type DecoderTensors, type GptGraph, buildGpt } from './model'
export { ROUTED_QUERY_BLOCK } from './routed'
export { type ParamCounts, checkModelFits, estimatedParams, kvCacheBytesPerToken, paramCounts, paramShapes } from './params'
export { type SafeDType, type SafeTensor, SafetensorsError, type SafetensorsFile, readSafetensors, writeSafetensors } from './safetensors'
export {
  CHECKPOINT_FILES, type Checkpoint, CheckpointError, type CheckpointFiles, type CheckpointSource, type ParamValues, RESERVED_CHECKPOINT_FILES,
  type SaveCheckpointOptions, decodeCheckpoint, encodeCheckpoint,
} from './checkpoint'
