/**
 * AdamW emitted into the training graph, so one session.run does forward + backward + update. Parameters
 * and moments go in as inputs and come out as `next.*` outputs; the step-dependent scalars (learning rate,
 * bias corrections) are inputs, so the graph never changes between steps.
 */
import { GraphError } from './errors'
import type { Graph, ParamInfo, Tensor } from './graph'
import * as op from './ops'

export interface AdamWOptions {
  beta1?: number
  beta2?: number
  eps?: number
  weightDecay?: number
  /** Clip gradients to this global L2 norm before the update (off when undefined). */
  clipNorm?: number
}

export interface AdamWGraph {
  /** Scalar inputs fed every step: `lr`, `bias_correction1` = 1−β1ᵗ, `bias_correction2` = 1−β2ᵗ. */
  lr: Tensor
  biasCorrection1: Tensor
  biasCorrection2: Tensor
  /** Global gradient norm before clipping (a graph output named `grad_norm`). */
  gradNorm: Tensor
  /** For each parameter: its state input names and the output names that carry the next values. */
  state: { param: string; m: string; v: string; nextParam: string; nextM: string; nextV: string }[]
}

export const nextName = (name: string) => `next.${name}`
export const momentNames = (param: string) => ({ m: `adam.m.${param}`, v: `adam.v.${param}` })

/** Step-dependent inputs of the AdamW graph for 1-based step t (PyTorch's convention). */
export function adamwScalars(t: number, lr: number, opts: AdamWOptions = {}) {
  const b1 = opts.beta1 ?? 0.9
  const b2 = opts.beta2 ?? 0.999
  return { lr, biasCorrection1: 1 - b1 ** t, biasCorrection2: 1 - b2 ** t }
}

export function adamw(graph: Graph, params: readonly ParamInfo[], grads: readonly Tensor[], opts: AdamWOptions = {}): AdamWGraph {
  if (params.length !== grads.length) throw new GraphError(`adamw: ${params.length} parameters but ${grads.length} gradients`)
  const b1 = opts.beta1 ?? 0.9
  const b2 = opts.beta2 ?? 0.999
  const eps = opts.eps ?? 1e-8
  const wd = opts.weightDecay ?? 0.01
  const dtype = params[0]?.tensor.dtype ?? 'float32'
  return graph.scope('adamw', () => {
    const lr = graph.input('lr', dtype, [], 'learning rate for this step')
    const bc1 = graph.input('bias_correction1', dtype, [], '1 - beta1^t')
    const bc2 = graph.input('bias_correction2', dtype, [], '1 - beta2^t')
    const sq = grads.map((g) => op.reduceSum(op.mul(g, g), [...g.shape.keys()], false))
    const gradNorm = graph.output('grad_norm', op.sqrt(op.sum(sq)), 'global L2 norm of the gradients before clipping')
    let gs = grads
    if (opts.clipNorm !== undefined) {
      if (!(opts.clipNorm > 0)) throw new GraphError(`adamw: clipNorm must be > 0, got ${opts.clipNorm}`)
      const scale = op.minimum(op.div(opts.clipNorm, op.add(gradNorm, 1e-6)), 1)
      gs = grads.map((g) => op.mul(g, scale))
    }
    const stepSize = op.div(lr, bc1)
    const decayFactor = op.sub(1, op.mul(lr, wd))
    const state = params.map((p, i) => {
      const name = p.tensor.name
      const names = momentNames(name)
      const shape = p.tensor.shape
      const m = graph.input(names.m, dtype, shape)
      const v = graph.input(names.v, dtype, shape)
      const g = gs[i]
      const m2 = op.add(op.mul(m, b1), op.mul(g, 1 - b1))
      const v2 = op.add(op.mul(v, b2), op.mul(op.mul(g, g), 1 - b2))
      const denom = op.add(op.sqrt(op.div(v2, bc2)), eps)
      const decayed = p.decay && wd !== 0 ? op.mul(p.tensor, decayFactor) : p.tensor
      const p2 = op.sub(decayed, op.mul(op.div(m2, denom), stepSize))
      graph.output(nextName(name), p2)
      graph.output(nextName(names.m), m2)
      graph.output(nextName(names.v), v2)
      return { param: name, m: names.m, v: names.v, nextParam: nextName(name), nextM: nextName(names.m), nextV: nextName(names.v) }
    })
    return { lr, biasCorrection1: bc1, biasCorrection2: bc2, gradNorm, state }
  })
}
