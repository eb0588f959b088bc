export { type AttentionCall, type AttentionCoreOptions, attentionCalls, causalAttention, causalMaskFor, mergeHeads, splitHeads, visibilityMask } from './attention'
export { type GroupedAttentionConfig, type GroupedAttentionOptions, type SchemeConfig, type SchemeProjections, groupedAttention, schemeDims, schemeProjections } from './scheme'
export { LayerKvCache } from './kvcache'
export { type SchemeCost, schemeCost } from './cost'
