/** Token routers: small networks from the normalized block input to one logit per expert / scheme. */
import { GraphError, linearLayer, ops, type Tensor } from '@moas/tensor-core'

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
 * indices), N(0, 0.02). Returns logits [..., nOut]. `activation` replaces the exact GELU (a float64 gradient
 * check composes the tanh form: ONNX Runtime has no float64 Erf).
 */
export function schemeRouter(x: Tensor, cfg: { nEmbd: number; hidden: number; nOut: number; activation?: (h: Tensor) => Tensor }, prefix: string): Tensor {
  checkSizes('schemeRouter', { nEmbd: cfg.nEmbd, hidden: cfg.hidden, nOut: cfg.nOut })
  checkInput('schemeRouter', x, cfg.nEmbd)
  const h = linearLayer(x, `${prefix}0`, cfg.hidden, { bias: false })
  const hidden = cfg.activation ? cfg.activation(h) : ops.gelu(h)
  return linearLayer(hidden, `${prefix}2`, cfg.nOut, { bias: false })
}

/** A single Linear router (GQE): `${name}.weight` [nOut, C], plus `${name}.bias` [nOut] when bias; N(0, 0.02). */
export function linearRouter(x: Tensor, cfg: { nEmbd: number; nOut: number; bias: boolean }, name: string): Tensor {
  checkSizes('linearRouter', { nEmbd: cfg.nEmbd, nOut: cfg.nOut })
  checkInput('linearRouter', x, cfg.nEmbd)
  return linearLayer(x, name, cfg.nOut, { bias: cfg.bias })
}
