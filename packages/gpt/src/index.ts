export {
  CHECKPOINT_FILES,
  type Checkpoint,
  CheckpointError,
  type CheckpointFiles,
  type CheckpointSource,
  decodeCheckpoint,
  encodeCheckpoint,
  type ParamValues,
  RESERVED_CHECKPOINT_FILES,
  type SaveCheckpointOptions,
} from './checkpoint'
export {
  CONFIG_KEYS,
  ConfigError,
  didYouMean,
  type GptConfig,
  type GptConfigInput,
  KV_LEVEL_WEIGHTS,
  type KvLevelWeights,
  PRESETS,
  type PresetName,
  resolveConfig,
  SHARED_KV_SOURCES,
  type SharedKvSource,
} from './config'
export { buildLogitsGraph, paramFeeds } from './feeds'
export type { GqeMode } from './gqe'
export { type LoadedModel, modelFromCheckpointFiles, modelFromParts } from './loaded-model'
export { MOAS_SCHEMES, type Scheme } from './moas'
export { isKvRouteControl, KV_BUDGET_TARGET, KV_ROUTE_LEVELS, kvBudgetTarget, levelCosts } from './moasKv'
export { type BuildOptions, buildGpt, DECODER_IO, type DecoderTensors, type GptGraph } from './model'
export {
  checkModelFits,
  checkTrainingFits,
  estimatedParams,
  kvCacheBytesPerToken,
  type ParamCounts,
  paramCounts,
  paramShapes,
  trainingStepBytes,
} from './params'
export { ROUTED_QUERY_BLOCK } from './routed'
export { RoutingTally } from './routing-tally'
export { readSafetensors, type SafeDType, type SafeTensor, SafetensorsError, type SafetensorsFile, writeSafetensors } from './safetensors'
export * from './tokenizer'
export {
  type AttentionBuilder,
  type AttentionCall,
  auxLossWeight,
  choiceLabels,
  gqeSlots,
  isGqe,
  isMoas,
  isRouted,
  kvCacheLayout,
  kvHeadsPerLayer,
  MAIN_VARIANTS,
  OPTIONAL_CONFIG_KEYS,
  type OptionalConfigKey,
  queryHeadsPerToken,
  routingGroups,
  VARIANT_TABLE,
  VARIANTS,
  type Variant,
  type VariantFamily,
  type VariantSpec,
  variantSpec,
} from './variants'
