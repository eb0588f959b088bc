export {
  type AttentionCall,
  type AttentionCoreOptions,
  type AttentionKernel,
  attentionCalls,
  type CachePast,
  causalAttention,
  causalMaskFor,
  composedAttention,
  joinPast,
  memoryEfficientAttention,
  mergeHeads,
  splitHeads,
  useAttentionKernel,
  visibilityMask,
} from './attention'
export { type SchemeCost, schemeCost } from './cost'
export { LayerKvCache } from './kvcache'
export {
  type GroupedAttentionConfig,
  type GroupedAttentionOptions,
  groupedAttention,
  type SchemeConfig,
  type SchemeProjections,
  schemeDims,
  schemeProjections,
} from './scheme'
