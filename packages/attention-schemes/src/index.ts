export { type AttentionCall, type AttentionCoreOptions, attentionCalls, causalAttention, causalMaskFor, mergeHeads, splitHeads } from './attention'
export { type GroupedAttentionConfig, type SchemeConfig, groupedAttention, schemeDims } from './scheme'
export { type SchemeCost, schemeCost } from './cost'
