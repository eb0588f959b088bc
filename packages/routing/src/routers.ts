/** Token routers: small networks from the normalized block input to one logit per expert / scheme. */
import { GraphError, type Tensor, ops } from '@moas/tensor-core'

function checkInput(fn: string, x: Tensor, nEmbd: number): void {
  if (x.shape[x.rank - 1] !== nEmbd) throw new GraphError(`${fn}: expects x [..., ${nEmbd}], got ${x.describe()}`)
}

function checkSizes(fn: string, sizes: Record<string, number>): void {
  for (const [name, v] of Object.entries(sizes))
    if (!(Number.isInteger(v) && v > 0)) throw new GraphError(`${fn}: ${name} must be a positive integer, got ${v}`)
}

/**
 * The MoAS paper's router: Linear(C→hidden, no bias) → GELU (exact) → Linear(hidden→nOut, no bias).
 * Parameters `${prefix}0.weight` [hidden, C] and `${prefix}2.weight` [nOut, hidden] (nn.Sequential
 * indices), N(0, 0.02). Returns logits [..., nOut].
 */
export function schemeRouter(x: Tensor, cfg: { nEmbd: number; hidden: number; nOut: number }, prefix: string): Tensor {
  checkSizes('schemeRouter', cfg)
  checkInput('schemeRouter', x, cfg.nEmbd)
  const g = x.graph
  const init = { kind: 'normal', std: 0.02 } as const
  const w0 = g.param(`${prefix}0.weight`, [cfg.hidden, cfg.nEmbd], { init, dtype: x.dtype })
  const w2 = g.param(`${prefix}2.weight`, [cfg.nOut, cfg.hidden], { init, dtype: x.dtype })
  return ops.linear(ops.gelu(ops.linear(x, w0)), w2)
}

/** A single Linear router (GQE): `${prefix}weight` [nOut, C], plus `${prefix}bias` [nOut] when bias. */
export function linearRouter(x: Tensor, cfg: { nEmbd: number; nOut: number; bias: boolean }, prefix: string): Tensor {
  checkSizes('linearRouter', { nEmbd: cfg.nEmbd, nOut: cfg.nOut })
  checkInput('linearRouter', x, cfg.nEmbd)
  const g = x.graph
  const w = g.param(`${prefix}weight`, [cfg.nOut, cfg.nEmbd], { init: { kind: 'normal', std: 0.02 }, dtype: x.dtype })
  const b = cfg.bias ? g.param(`${prefix}bias`, [cfg.nOut], { init: { kind: 'zeros' }, dtype: x.dtype }) : null
  return ops.linear(x, w, b)
}
