/**
 * The plain schemes (mha, gqa, mqa) and the MoAS mixtures of them (docs/variants.md, "MoAS"). Each branch
 * is a full grouped attention block from @moas/attention-schemes with its own c_proj and residual dropout.
 */
import { type GroupedAttentionConfig, groupedAttention } from '@moas/attention-schemes'
import { mseBalanceLoss, schemeRouter, switchBalanceLoss, topKGates } from '@moas/routing'
import { ops, type Tensor } from '@moas/tensor-core'
import type { GptConfig } from './config'
import type { BuildContext } from './layers'

/** The MoAS branches, in the order of the router's gates and of the KV cache's heads. */
export const MOAS_SCHEMES = ['mha', 'gqa', 'mqa'] as const
export type Scheme = (typeof MOAS_SCHEMES)[number]

/** What an attention layer hands back to its block. */
export interface AttentionOutput {
  y: Tensor
  /** This layer's router balance loss (scalar), null without a router. */
  balance: Tensor | null
  /** Softmax gates: [B, T, S] for MoAS, [B, T, G, M] for GQE. */
  gates: Tensor | null
  /** Chosen experts (int64, descending gate order): [B, T, k] for moas-topk, [B, T, G, k] for GQE. */
  chosen: Tensor | null
}

export const kvHeadsOf = (scheme: Scheme, cfg: GptConfig) => (scheme === 'mha' ? cfg.n_head : scheme === 'gqa' ? cfg.n_kv_head! : 1)

export function schemeConfig(scheme: Scheme, cfg: GptConfig): GroupedAttentionConfig {
  return {
    nEmbd: cfg.n_embd,
    nHead: cfg.n_head,
    nKvHead: kvHeadsOf(scheme, cfg),
    nLayer: cfg.n_layer,
    bias: cfg.bias,
    dropout: cfg.dropout,
    fusedQkv: scheme === 'mha',
  }
}

/** mha: fused c_attn; gqa: n_kv_head KV heads; mqa: one KV head. */
export function plainScheme(x: Tensor, cfg: GptConfig, scheme: Scheme, prefix: string, ctx: BuildContext): AttentionOutput {
  return { y: groupedAttention(x, schemeConfig(scheme, cfg), prefix, ctx), balance: null, gates: null, chosen: null }
}

/** O_mha, O_gqa, O_mqa, each under `${prefix}${scheme}.`; with a KV cache they take its heads in this order. */
function branches(x: Tensor, cfg: GptConfig, prefix: string, ctx: BuildContext): Tensor[] {
  return MOAS_SCHEMES.map((s) => groupedAttention(x, schemeConfig(s, cfg), `${prefix}${s}.`, ctx))
}

/** Σ_s w_s · O_s for branch outputs O_s [B, T, C] and per-token weights [B, T, S]. */
export function mix(outputs: Tensor[], weights: Tensor): Tensor {
  // One [B, T, C]·[B, T, 1] product per branch: ONNX Runtime broadcasts a per-row scalar over the contiguous
  // C axis quickly, whereas stacking into [B, T, C, S] and broadcasting over the short S axis was ~5x slower.
  return ops.sum(outputs.map((o, s) => ops.mul(o, ops.slice(weights, [s], [s + 1], [-1]))))
}

/** The router's softmax gates p [B, T, 3]: Linear(C→hidden) → GELU → Linear(hidden→3), no biases. */
export function moasGates(x: Tensor, cfg: GptConfig, prefix: string): Tensor {
  return ops.softmax(schemeRouter(x, { nEmbd: cfg.n_embd, hidden: cfg.router_hidden!, nOut: MOAS_SCHEMES.length }, `${prefix}router.`), -1)
}

/** static-moas: (O_mha + O_gqa + O_mqa) / 3. */
export function staticMoas(x: Tensor, cfg: GptConfig, prefix: string, ctx: BuildContext): AttentionOutput {
  const y = ops.mul(ops.sum(branches(x, cfg, prefix, ctx)), 1 / MOAS_SCHEMES.length)
  return { y, balance: null, gates: null, chosen: null }
}

/** moas: Σ_s p_s O_s with gate dropout in training; MSE balance loss on the gates before dropout. */
export function moas(x: Tensor, cfg: GptConfig, prefix: string, ctx: BuildContext): AttentionOutput {
  const p = moasGates(x, cfg, prefix)
  const y = mix(branches(x, cfg, prefix, ctx), ops.dropout(p, cfg.gate_dropout!, ctx.training))
  return { y, balance: mseBalanceLoss(p), gates: p, chosen: null }
}

/**
 * moas-topk, dense formulation: every branch runs on every token and the top-k weights (raw gate for
 * k = 1, renormalized for k >= 2, exactly 0 for unchosen branches) mix them. Used for training, where
 * the gradient must reach every chosen branch; routed.ts has the inference path that skips the work.
 */
export function moasTopKDense(x: Tensor, cfg: GptConfig, prefix: string, ctx: BuildContext): AttentionOutput {
  const p = moasGates(x, cfg, prefix)
  const top = topKGates(p, cfg.moas_top_k!)
  const y = mix(branches(x, cfg, prefix, ctx), top.dense)
  return { y, balance: switchBalanceLoss(p, top.indices), gates: p, chosen: top.indices }
}
