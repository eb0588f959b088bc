/**
 * Analytic cost of one attention scheme. Conventions:
 * - params: weights (and biases) of ONE block's attention (projections + c_proj).
 * - flopsPerToken: forward FLOPs of ONE block's attention for one token that attends over a context of
 *   `contextLength` keys. Matmuls count 2·m·n·k; the core counts q·kᵀ and p·v over the full T keys,
 *   2·2·T·d per query head (not halved for the causal mask, which is what a dense kernel computes);
 *   softmax, scaling, masking and bias adds are not counted.
 * - kvCacheBytesPerToken: bytes of K and V cached per token for the WHOLE model:
 *   2 · nLayer · nKvHead · d · bytesPerElement.
 * totalParams / totalFlopsPerToken multiply the per-block figures by nLayer.
 */
import { GraphError } from '@moas/tensor-core'
import { type GroupedAttentionConfig, schemeDims } from './scheme'

export interface SchemeCost {
  params: number
  flopsPerToken: number
  kvCacheBytesPerToken: number
  /** params × nLayer. */
  totalParams: number
  /** flopsPerToken × nLayer. */
  totalFlopsPerToken: number
}

export function schemeCost(cfg: GroupedAttentionConfig, opts: { contextLength: number; bytesPerElement?: number }): SchemeCost {
  const { C, H, G, d } = schemeDims(cfg)
  const T = opts.contextLength
  const bytes = opts.bytesPerElement ?? 4
  if (!(Number.isInteger(T) && T > 0)) throw new GraphError(`schemeCost: contextLength must be a positive integer, got ${T}`)
  const kvOut = G * d
  // q (C outputs), k and v (G·d outputs each), c_proj (C outputs); every Linear is C inputs wide.
  const projWeights = C * C + 2 * kvOut * C + C * C
  const projBiases = cfg.bias ? C + 2 * kvOut + C : 0
  const params = projWeights + projBiases
  const flopsPerToken = 2 * projWeights + 2 * 2 * T * d * H
  const kvCacheBytesPerToken = 2 * cfg.nLayer * G * d * bytes
  return { params, flopsPerToken, kvCacheBytesPerToken, totalParams: params * cfg.nLayer, totalFlopsPerToken: flopsPerToken * cfg.nLayer }
}
