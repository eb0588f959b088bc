/**
 * Reverse-mode autodiff over a Graph. Walks the nodes that lie between the parameters and the loss in
 * reverse order, applies the rule from GRADIENTS, undoes broadcasting once (here), and sums fan-out.
 * Nodes that do not lead to the loss, or do not depend on a parameter, get no backward nodes.
 */
import { isFloat } from './dtype'
import { GraphError } from './errors'
import { GRADIENTS } from './gradients'
import { type Dim, type Graph, numel, producersOf, type Shape, type Tensor } from './graph'
import * as op from './ops'

export function grad(loss: Tensor, wrt: readonly Tensor[]): Tensor[] {
  const graph = loss.graph
  const n = numel(loss.shape)
  if (n !== 1) throw new GraphError(`grad: the loss must be a scalar (one element), got ${loss.describe()}; reduce it (e.g. reduceMean) first`)
  if (!isFloat(loss.dtype)) throw new GraphError(`grad: the loss must be floating-point, got ${loss.describe()}`)
  for (const p of wrt) if (p.graph !== graph) throw new GraphError(`grad: ${p.describe()} belongs to another graph`)

  // Tensors that depend on some wrt tensor (forward reachability).
  const dependsOnWrt = new Set<Tensor>(wrt)
  for (const node of graph.nodes) {
    if (graph.gradientStops.has(node)) continue
    if (node.inputs.some((t) => t && dependsOnWrt.has(t))) for (const o of node.outputs) dependsOnWrt.add(o)
  }

  const pending = new Map<Tensor, Tensor[]>()
  const push = (t: Tensor, g: Tensor) => {
    const list = pending.get(t)
    if (list) list.push(g)
    else pending.set(t, [g])
  }
  /** The total gradient of t: the sum of every contribution (fan-out), or null when none reached it. */
  const total = (t: Tensor): Tensor | null => {
    const list = pending.get(t)
    if (!list) return null
    if (list.length > 1) pending.set(t, [op.sum(list)])
    return pending.get(t)![0]
  }

  const firstBackward = graph.nodes.length
  const grads = graph.scope('grad', () => {
    push(loss, graph.constant([1], loss.shape as number[], loss.dtype, 'grad_seed'))
    for (let i = graph.nodes.length - 1; i >= 0; i--) {
      const node = graph.nodes[i]
      if (!node.outputs.some((o) => pending.has(o))) continue
      if (!node.inputs.some((t) => t && dependsOnWrt.has(t) && isFloat(t.dtype))) continue
      const rule = GRADIENTS[node.op]
      if (!rule) throw new GraphError(`grad: no gradient rule for op '${node.op}' (node '${node.name}'), which lies between the loss and the parameters`)
      const gys = node.outputs.map(total)
      const g = gys[0] ?? op.zerosLike(node.outputs[0])
      const gxs = graph.scope(node.name.replace(/\//g, '.'), () => rule({ node, x: node.inputs, y: node.outputs, g, gys }))
      node.inputs.forEach((x, j) => {
        const gx = gxs[j]
        if (!x || !gx || !dependsOnWrt.has(x) || !isFloat(x.dtype)) return
        const gi = unbroadcast(gx, x.shape)
        if (!shapesCompatible(gi.shape, x.shape))
          throw new GraphError(`grad: rule for '${node.op}' gave a gradient of shape [${gi.shape.join(',')}] for input ${x.describe()}`)
        push(x, gi)
      })
    }
    return wrt.map((p) => total(p) ?? op.zerosLike(p))
  })
  pruneUnused(graph, firstBackward, grads)
  return grads
}

/**
 * Drop the backward nodes (appended since index `from`) that no returned gradient needs. Rules emit a
 * gradient for every input, and some are never used (dL/dx of a data input x: a whole GEMM for the first
 * linear layer; results a later rule chose not to use), and ONNX Runtime executes unused nodes all the same.
 */
function pruneUnused(graph: Graph, from: number, keep: readonly Tensor[]): void {
  const needed = producersOf([...keep, ...graph.outputs])
  const backward = graph.nodes.splice(from)
  for (const n of backward) if (needed.has(n)) graph.nodes.push(n)
}

/** Sum a gradient over the axes that broadcasting added or stretched, so it has the input's shape. */
export function unbroadcast(g: Tensor, shape: Shape): Tensor {
  const extra = g.rank - shape.length
  let out = g
  if (extra > 0) out = op.reduceSum(out, [...Array(extra).keys()], false)
  const stretched = shape.flatMap((d, i) => (d === 1 && out.shape[i] !== 1 ? [i] : []))
  if (stretched.length) out = op.reduceSum(out, stretched, true)
  return out
}

function shapesCompatible(a: Shape, b: Shape): boolean {
  const known = (d: Dim) => typeof d === 'number'
  return a.length === b.length && a.every((d, i) => d === b[i] || !known(d) || !known(b[i]))
}
