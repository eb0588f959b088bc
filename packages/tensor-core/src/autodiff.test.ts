// The generic backward pass: fan-out, pruning, non-differentiable outputs, reuse of forward values, ONNX
// Dropout's mask, symbolic shapes, and a transformer-like block checked end to end by float64 finite
// differences.
import { describe, expect, it } from 'vitest'
import { grad } from './autodiff'
import { GraphError } from './errors'
import { Graph, type Node, type Tensor } from './graph'
import * as ops from './ops'
import { hostTensor } from './runtime'
import { gradcheck } from './testing/gradcheck'
import { testSession } from './testing/provider'

const SEED = Number(process.env.MOAS_GRADCHECK_SEED ?? 1)
const f64param = (g: Graph, name: string, shape: number[]) => g.param(name, shape, { init: { kind: 'zeros' }, dtype: 'float64' })
const backwardNodes = (g: Graph) => g.nodes.filter((n) => n.name.startsWith('grad/'))
/** Backward nodes emitted for the forward node `n` (rules run in a scope named after it). */
const nodesFor = (g: Graph, n: Node) => g.nodes.filter((b) => b.name.startsWith(`grad/${n.name.replace(/\//g, '.')}/`))
const consumers = (g: Graph, t: Tensor) => g.nodes.filter((n) => n.inputs.includes(t))

describe('fan-out, pruning, non-differentiable outputs', () => {
  it('sums the gradients of a tensor used several times (fan-out)', async () => {
    let h!: Tensor
    const r = await gradcheck(
      (g) => {
        const x = g.input('x', 'float64', [3, 4])
        h = ops.tanh(x)
        // h feeds three consumers: mul with itself (two uses) and exp.
        return ops.add(ops.mul(h, h), ops.exp(h))
      },
      { seed: SEED },
    )
    expect(r.maxError, r.summary).toBeLessThan(1e-6)
    // The three contributions to dL/dh meet in one Sum node.
    const gradOfH = nodesFor(r.graph, h.producer!)
    expect(gradOfH.length).toBeGreaterThan(0)
    const sumNode = r.graph.nodes.find((n) => n.op === 'Sum' && n.name.startsWith('grad/') && consumers(r.graph, n.outputs[0]).some((c) => gradOfH.includes(c)))
    expect(sumNode?.inputs.length).toBe(3)
  })

  it('emits no backward nodes for branches that do not lead to the loss or do not depend on the parameters', () => {
    const g = new Graph('prune')
    const x = g.input('x', 'float64', [4])
    const w = f64param(g, 'w', [4])
    const side = ops.exp(ops.mul(x, w)) // depends on w but is only a graph output, not part of the loss
    g.output('side', side)
    const constBranch = ops.tanh(ops.mul(x, 2)) // part of the loss but independent of w
    const ww = ops.mul(w, w)
    const root = ops.sqrt(ww)
    const scaled = ops.mul(root, 3)
    const summed = ops.add(scaled, constBranch)
    const loss = ops.reduceSum(summed, [0])
    const [gw] = grad(loss, [w])
    g.output('gw', gw)
    expect(nodesFor(g, side.producer!)).toEqual([])
    expect(nodesFor(g, constBranch.producer!)).toEqual([])
    expect(nodesFor(g, constBranch.producer!.inputs[0]!.producer!)).toEqual([])
    // Exactly the nodes on the path w → loss got rules (backward scopes are named after forward nodes).
    const ruled = new Set(backwardNodes(g).map((n) => n.name.split('/')[1]))
    ruled.delete('grad_seed')
    // ('Sum' is the fan-out of w's two uses in w·w; Add's rule passes g through without new nodes.)
    const expected = [ww, root, scaled, summed, loss].map((t) => t.producer!.name)
    for (const name of ruled) expect([...expected, 'Sum']).toContain(name)
    expect(ruled.has(root.producer!.name) && ruled.has(ww.producer!.name) && ruled.has(loss.producer!.name)).toBe(true)
  })

  it('a parameter that does not reach the loss gets a zero gradient of its shape', async () => {
    const g = new Graph('unreached')
    const a = f64param(g, 'a', [2, 3])
    const b = f64param(g, 'b', [5])
    const loss = ops.reduceSum(ops.exp(a), [0, 1])
    const [ga, gb] = grad(loss, [a, b])
    g.output('ga', ga)
    g.output('gb', gb)
    const s = await testSession(g)
    const out = await s.run({ a: hostTensor('float64', [2, 3], [0, 1, 2, 3, 4, 5]), b: hostTensor('float64', [5], [1, 2, 3, 4, 5]) })
    expect(Array.from(out.gb.data as Float64Array)).toEqual([0, 0, 0, 0, 0])
    expect(out.gb.shape).toEqual([5])
    expect(
      Array.from(out.ga.data as Float64Array)
        .map((v, i) => v - Math.exp(i))
        .every((d) => Math.abs(d) < 1e-12),
    ).toBe(true)
  })

  it('TopK indices are not differentiable: gradients flow through values and through a Gather that uses the indices', async () => {
    const r = await gradcheck(
      (g) => {
        const scores = g.input('scores', 'float64', [3, 6])
        const table = f64param(g, 'table', [6, 2])
        const [vals, idx] = ops.topk(scores, 2)
        // Picks rows of `table` by the (integer) indices: d/dtable is a scatter-add, d/dscores only via vals.
        const picked = ops.gather(table, idx) // [3, 2, 2]
        return ops.mul(picked, ops.unsqueeze(vals, [-1]))
      },
      {
        seed: SEED,
        // Scores spaced ≥ 0.5 apart (no reordering within a finite-difference step).
        feeds: { scores: hostTensor('float64', [3, 6], [5, 1, 3, 0, 2, 4, 0.5, 2.5, 4.5, 1.5, 3.5, 5.5, 3, 5, 1, 4, 0, 2]) },
        allowZeroGrad: [],
      },
    )
    expect(r.maxError, r.summary).toBeLessThan(1e-6)
    const topk = r.graph.nodes.find((n) => n.op === 'TopK')!
    // No gradient ever reaches the int64 indices output.
    expect(topk.outputs[1].dtype).toBe('int64')
    expect(nodesFor(r.graph, topk).length).toBeGreaterThan(0)
  })

  it('stopGradient: the forward value, and no gradient through it (straight-through: y = x + (p - sg(p)))', async () => {
    const g = new Graph('stop')
    const x = g.param('x', [3], { init: { kind: 'zeros' }, dtype: 'float64' })
    // L = Σ x · sg(x) + Σ (x − sg(x)): dL/dx = sg(x) + 1 = x + 1 (not 2x + 1), and L = Σ x² exactly
    const sx = ops.stopGradient(x)
    const loss = ops.reduceSum(ops.add(ops.mul(x, sx), ops.sub(x, sx)), [0])
    g.output('loss', loss)
    g.output('dx', grad(loss, [x])[0])
    const s = await testSession(g)
    const out = await s.run({ x: hostTensor('float64', [3], new Float64Array([0.5, -2, 3])) })
    await s.release()
    expect(Number(out.loss.data[0])).toBe(0.25 + 4 + 9)
    expect(Array.from(out.dx.data as Float64Array)).toEqual([1.5, -1, 4])
  })

  it('refuses an op without a rule on the loss path, naming it', () => {
    const g = new Graph('norule')
    const w = f64param(g, 'w', [3, 4])
    const loss = ops.reduceSum(ops.reduceMax(w, [1]), [0])
    expect(() => grad(loss, [w])).toThrow(GraphError)
    expect(() => grad(loss, [w])).toThrow(/no gradient rule for op 'ReduceMax' \(node 'ReduceMax'\)/)
  })
})

describe('backward nodes reuse forward values', () => {
  it('softmax output, LayerNorm statistics (float32), cross-entropy log-probabilities, dropout mask', () => {
    const g = new Graph('reuse')
    const x = g.input('x', 'float32', [4, 6])
    const gamma = g.param('gamma', [6], { init: { kind: 'ones' } })
    const ln = ops.layerNorm(x, gamma, null)
    const sm = ops.softmax(ln)
    const dr = ops.dropout(sm, 0.1, true, 3)
    const loss = ops.crossEntropy(dr, g.input('labels', 'int64', [4]))
    grad(loss, [gamma])
    const bwd = backwardNodes(g)
    const usedByBackward = (t: Tensor) => bwd.some((n) => n.inputs.includes(t))
    const lnNode = ln.producer!
    expect(usedByBackward(lnNode.outputs[1])).toBe(true) // Mean
    expect(usedByBackward(lnNode.outputs[2])).toBe(true) // InvStdDev
    expect(usedByBackward(sm)).toBe(true)
    expect(usedByBackward(dr.producer!.outputs[1])).toBe(true) // the Dropout mask
    expect(usedByBackward(loss.producer!.outputs[1])).toBe(true) // log-probabilities
    // ...and nothing is recomputed: no second Softmax, LayerNorm, Dropout or ReduceMean of x.
    for (const op of ['Softmax', 'LayerNormalization', 'Dropout', 'SoftmaxCrossEntropyLoss', 'LogSoftmax']) expect(bwd.filter((n) => n.op === op)).toEqual([])
  })
})

describe('ONNX Dropout (internal RNG): the backward pass applies the forward mask', () => {
  it('y = x·mask/(1−p) and dx = g·mask/(1−p) with the mask read from the same run', async () => {
    const g = new Graph('dropout')
    const shape = [8, 16]
    const x = g.input('x', 'float64', shape)
    const r = g.input('r', 'float64', shape)
    const p = 0.3
    const y = ops.dropout(x, p, true, 1234)
    const mask = y.producer!.outputs[1]
    const loss = ops.reduceSum(ops.mul(y, r), [0, 1])
    const [dx] = grad(loss, [x])
    g.output('y', y)
    g.output('mask', mask)
    g.output('dx', dx)
    const s = await testSession(g)
    const n = 128
    const xv = Float64Array.from({ length: n }, (_, i) => Math.sin(i) + 1.5)
    const rv = Float64Array.from({ length: n }, (_, i) => Math.cos(3 * i))
    const out = await s.run({ x: hostTensor('float64', shape, xv), r: hostTensor('float64', shape, rv) })
    const m = out.mask.data as Uint8Array
    const kept = m.reduce((a, b) => a + b, 0)
    // Roughly (1 − p) kept: binomial(128, 0.7) is within 70..110 with overwhelming probability.
    expect(kept).toBeGreaterThan(70)
    expect(kept).toBeLessThan(110)
    // ONNX Runtime reads the ratio as float32: its scale is 1 / (1 − ratio₃₂), also in float64 graphs.
    const scale32 = 1 / (1 - Math.fround(p))
    expect(Math.abs(scale32 - 1 / (1 - p))).toBeLessThan(1e-7)
    for (let i = 0; i < n; i++) {
      const scale = m[i] ? scale32 : 0
      expect((out.y.data as Float64Array)[i]).toBeCloseTo(xv[i] * scale, 14)
      expect((out.dx.data as Float64Array)[i]).toBeCloseTo(rv[i] * scale, 14)
    }
  })

  it('is the identity (no node) when not training', () => {
    const g = new Graph('eval')
    const x = g.input('x', 'float32', [3])
    expect(ops.dropout(x, 0.5, false)).toBe(x)
    expect(g.nodes).toEqual([])
  })
})

describe('symbolic shapes', () => {
  it('differentiates through Reshape [batch, seq, C] → [batch*seq, C], a symbolic-N cross-entropy and mean', async () => {
    const r = await gradcheck(
      (g) => {
        const x = g.input('x', 'float64', ['batch', 'seq', 4])
        const w = f64param(g, 'w', [5, 4])
        const flat = ops.reshape(x, ['batch*seq', 4]) // its gradient reshapes back with Shape(x) at run time
        const logits = ops.linear(flat, w) // 2-D x·Wᵀ with a symbolic row count
        const ce = ops.crossEntropy(logits, g.input('labels', 'int64', ['batch*seq'])) // divides by N at run time
        return [ce, ops.reduceMean(ops.unsqueeze(logits, [0]), [1])] // count of a symbolic axis at run time
      },
      { seed: SEED, dims: { batch: 2, seq: 3 }, feeds: { labels: hostTensor('int64', [6], [0, 4, 2, 2, 1, 3]) } },
    )
    expect(r.feeds.x.shape).toEqual([2, 3, 4])
    expect(r.maxError, r.summary).toBeLessThan(1e-6)
  })
})

/**
 * A pre-LN transformer block on [B, T, C] in float64: LayerNorm → causal multi-head self-attention
 * (fused qkv, softmax with an additive causal mask) → residual → LayerNorm → MLP with tanh-GELU → residual
 * → LayerNorm → vocabulary head → cross-entropy.
 */
function transformerBlock(g: Graph, B: number, T: number, C: number, H: number, V: number): Tensor {
  const D = C / H
  const p = (name: string, shape: number[]) => f64param(g, name, shape)
  const x = g.input('x', 'float64', [B, T, C])
  const labels = g.input('labels', 'int64', [B * T])
  const h1 = ops.layerNorm(x, p('ln_1.weight', [C]), p('ln_1.bias', [C]))
  const qkv = ops.linear(h1, p('attn.c_attn.weight', [3 * C, C]), p('attn.c_attn.bias', [3 * C]))
  const heads = (t: Tensor) => ops.transpose(ops.reshape(t, [B, T, H, D]), [0, 2, 1, 3]) // [B, H, T, D]
  const [q, k, v] = ops.split(qkv, [C, C, C], -1).map(heads)
  const scores = ops.add(ops.mul(ops.matmul(q, ops.transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(D)), ops.causalMask(x, T))
  const att = ops.matmul(ops.softmax(scores, -1), v) // [B, H, T, D]
  const merged = ops.reshape(ops.transpose(att, [0, 2, 1, 3]), [B, T, C])
  const x1 = ops.add(x, ops.linear(merged, p('attn.c_proj.weight', [C, C])))
  const h2 = ops.layerNorm(x1, p('ln_2.weight', [C]), null)
  // tanh-GELU written out in float64 primitives: ONNX Runtime's float64 Gelu(tanh) kernel deviates from the
  // formula by ~3e-8 relative (see gradients.test.ts), which alone would exceed 1e-6 here on small gradients.
  const mlp = ops.linear(geluTanh(ops.linear(h2, p('mlp.c_fc.weight', [4 * C, C]), p('mlp.c_fc.bias', [4 * C]))), p('mlp.c_proj.weight', [C, 4 * C]))
  const x2 = ops.add(x1, mlp)
  const logits = ops.linear(ops.layerNorm(x2, p('ln_f.weight', [C]), null), p('lm_head.weight', [V, C]))
  return ops.crossEntropy(ops.reshape(logits, [B * T, V]), labels)
}

describe('composite: transformer-like block, float64 finite differences', () => {
  it('every parameter and the input, relative error < 1e-6', async () => {
    const [B, T, C, H, V] = [2, 4, 8, 2, 7]
    const r = await gradcheck((g) => transformerBlock(g, B, T, C, H, V), {
      seed: SEED,
      feeds: { labels: hostTensor('int64', [B * T], [1, 6, 0, 3, 3, 5, 2, 4]) },
      // LayerNorm gains near 1 like a trained model; other params N(0, 0.5) so the attention is not uniform.
      sample: Object.fromEntries(['ln_1.weight', 'ln_2.weight', 'ln_f.weight'].map((n) => [n, (_r: () => number, normal: () => number) => 1 + 0.2 * normal()])),
      maxPerTensor: 24,
      // The key part of c_attn.bias has an exactly zero gradient (softmax is invariant to adding q·b_k to every
      // score of a query); finite differences return ~1e-13 of rounding there, so the floor is 1e-6, not 1e-8.
      floor: 1e-6,
    })
    expect(r.vacuous).toEqual([])
    expect(r.maxError, r.summary).toBeLessThan(1e-6)
    expect(r.tensors.map((t) => t.name).sort()).toEqual([
      'attn.c_attn.bias',
      'attn.c_attn.weight',
      'attn.c_proj.weight',
      'lm_head.weight',
      'ln_1.bias',
      'ln_1.weight',
      'ln_2.weight',
      'ln_f.weight',
      'mlp.c_fc.bias',
      'mlp.c_fc.weight',
      'mlp.c_proj.weight',
      'x',
    ])
  })
})
/** 0.5·h·(1 + tanh(√(2/π)·(h + 0.044715·h³))) */
const geluTanh = (h: Tensor) =>
  ops.mul(ops.mul(h, 0.5), ops.add(1, ops.tanh(ops.mul(ops.add(h, ops.mul(ops.mul(ops.mul(h, h), h), 0.044715)), Math.sqrt(2 / Math.PI)))))
