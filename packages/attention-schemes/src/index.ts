export {
  type AttentionCall, type AttentionCoreOptions, type CachePast, type AttentionKernel, attentionCalls, causalAttention, causalMaskFor, composedAttention, joinPast, memoryEfficientAttention, mergeHeads, splitHeads,
  useAttentionKernel, visibilityMask,
} from './attention'
export { type GroupedAttentionConfig, type GroupedAttentionOptions, type SchemeConfig, type SchemeProjections, groupedAttention, schemeDims, schemeProjections } from './scheme'
export { LayerKvCache } from './kvcache'
export { type SchemeCost, schemeCost } from './cost'
