/**
 * A float64 finite-difference check of the whole model's backward graph, end to end, on one tiny GQE
 * (k = 2 of M = 4 experts, own shared K/V, biases: routing, gathers, slots and every projection). The
 * fixture comparison is the main evidence for every variant; this one needs no reference at all.
 * Float64 in ONNX Runtime needs three concessions, each measured:
 * - no float64 Erf kernel: the MLP uses tanh-GELU, composed from Tanh (ORT's float64 Gelu kernel is only
 *   float32-accurate); the exact GELU's gradient rule is covered by the float32 fixture tests;
 * - LayerNorm is composed from elementary ops in float64 (layers.ts);
 * - optimization level 'basic': the 'extended' fusions rewrite float64 graphs with float32 attributes
 *   (e.g. a folded 1/√d scale), which moves the relative error from ~1e-8 to ~2e-6.
 * GQE's router has no GELU, so the routed path is exactly the model's.
 */
import { Graph, grad, type HostTensor, hostTensor, Session } from '@moas/tensor-core'
import { expect, it } from 'vitest'
import { resolveConfig } from './config'
import { buildGpt } from './model'
import { feedsOf, idxTensor, randomWeights, tokens } from './testing/index'

/**
 * Compare `names`' analytic gradients with float64 central differences of the forward graph's loss, at each
 * tensor's largest-gradient coordinate and one more; returns the worst relative error.
 */
async function checkAgainstDifferences(
  forward: Graph,
  weights: Map<string, Float32Array | Float64Array>,
  data: Record<string, HostTensor>,
  analytic: Record<string, HostTensor>,
  names: readonly string[],
): Promise<number> {
  const fwd = await Session.create(forward, { optimization: 'basic' })
  const lossAt = async (name: string, i: number, delta: number) => {
    const w = new Map(weights)
    const changed = Float64Array.from(weights.get(name)!)
    changed[i] += delta
    w.set(name, changed)
    return Number((await fwd.run({ ...feedsOf(w, forward), ...data })).loss.data[0])
  }
  const h = 1e-5
  let worst = 0
  for (const name of names) {
    const g = analytic[`grad.${name}`].data as Float64Array
    const big = g.reduce((best, v, i) => (Math.abs(v) > Math.abs(g[best]) ? i : best), 0)
    for (const i of new Set([big, (big * 7 + 3) % g.length])) {
      const fd = ((await lossAt(name, i, h)) - (await lossAt(name, i, -h))) / (2 * h)
      const err = Math.abs(fd - g[i]) / Math.max(Math.abs(g[i]), 1e-3)
      worst = Math.max(worst, err)
      expect(err, `${name}[${i}]: analytic ${g[i]}, finite difference ${fd}`).toBeLessThan(1e-7)
    }
  }
  await fwd.release()
  return worst
}

it('gqe (k = 2, own shared K/V, bias): analytic gradients equal float64 central differences', async () => {
  const cfg = resolveConfig({
    vocab_size: 7,
    block_size: 6,
    n_layer: 2,
    n_head: 4,
    n_kv_head: 1,
    n_embd: 8,
    bias: true,
    attention: 'gqe',
    gqe_top_k: 2,
    gqe_shared_kv: 'own',
    balance_weight: 0.5,
  })
  const B = 2,
    T = 6
  const opts = { batch: B, seq: T, training: true, withTargets: true, dtype: 'float64', gelu: 'tanh' } as const
  const forward = new Graph('fwd')
  const fm = buildGpt(forward, cfg, opts)
  forward.output('loss', fm.loss!)
  const backward = new Graph('bwd')
  const bm = buildGpt(backward, cfg, { ...opts, routingStats: true })
  const params = backward.params.map((p) => p.tensor)
  grad(bm.loss!, params).forEach((g, i) => backward.output(`grad.${params[i].name}`, g))

  const weights = randomWeights(backward, 12)
  const ids = tokens(B * T, 7, 5)
  const data = {
    idx: idxTensor(ids, B, T),
    targets: idxTensor(
      ids.map((t) => (t * 3 + 1) % 7),
      B,
      T,
    ),
  }
  const analytic = await (await Session.create(backward, { optimization: 'basic' })).run({ ...feedsOf(weights, backward), ...data })

  // Routing must not flip under the perturbation: every top-k decision has a clear gap.
  for (const [name, gates] of Object.entries(analytic).filter(([k]) => k.startsWith('gates.'))) {
    const p = gates.data as Float64Array
    for (let i = 0; i < p.length; i += 4) {
      const s = Array.from(p.subarray(i, i + 4)).sort((a, b) => b - a)
      expect(Math.min(s[0] - s[1], s[1] - s[2]), `${name}: top-2 decision gap`).toBeGreaterThan(1e-4)
    }
  }

  const worst = await checkAgainstDifferences(
    forward,
    weights,
    data,
    analytic,
    params.map((p) => p.name),
  )
  console.log(`float64 gradient check: ${params.length} tensors, worst relative error ${worst.toExponential(2)}`)
})

it("moas-kv (own level weights, bias, budget active): with the router's gradient off, every gradient equals float64 central differences", async () => {
  // The router reaches the loss only through its hard choice (a step function), so its straight-through
  // gradient is not a derivative of the loss (it also flows on into the router's input): the PyTorch
  // fixtures check it. Here routerGradient 'none' leaves every other gradient an exact derivative.
  const cfg = resolveConfig({
    vocab_size: 7,
    block_size: 6,
    n_layer: 2,
    n_head: 4,
    n_kv_head: 2,
    n_embd: 8,
    bias: true,
    attention: 'moas-kv',
    kv_level_weights: 'own',
    kv_budget: 0.3,
    router_hidden: 4,
  })
  const B = 2,
    T = 6
  const opts = { batch: B, seq: T, training: true, withTargets: true, dtype: 'float64', gelu: 'tanh', routerGradient: 'none' } as const
  const forward = new Graph('fwd')
  forward.output('loss', buildGpt(forward, cfg, opts).loss!)
  const backward = new Graph('bwd')
  const bm = buildGpt(backward, cfg, { ...opts, routingStats: true })
  backward.output('balance', bm.balanceLoss)
  const params = backward.params.map((p) => p.tensor)
  grad(bm.loss!, params).forEach((g, i) => backward.output(`grad.${params[i].name}`, g))

  const weights = randomWeights(backward, 21)
  const ids = tokens(B * T, 7, 9)
  const target = { kv_budget_target: hostTensor('float64', [], new Float64Array([cfg.kv_budget!])) }
  const data = {
    ...target,
    idx: idxTensor(ids, B, T),
    targets: idxTensor(
      ids.map((t) => (t * 3 + 1) % 7),
      B,
      T,
    ),
  }
  const analytic = await (await Session.create(backward, { optimization: 'basic' })).run({ ...feedsOf(weights, backward), ...data })
  expect(Number(analytic.balance.data[0]), 'the budget loss is active').toBeGreaterThan(0)
  for (const [name, gates] of Object.entries(analytic).filter(([k]) => k.startsWith('gates.'))) {
    const p = gates.data as Float64Array
    for (let i = 0; i < p.length; i += 3) {
      const s = Array.from(p.subarray(i, i + 3)).sort((a, b) => b - a)
      expect(s[0] - s[1], `${name}: top-1 decision gap`).toBeGreaterThan(1e-4)
    }
  }
  // the router gets no gradient with routerGradient 'none'; every other tensor is an exact derivative
  const routers = params.filter((p) => p.name.includes('.router.'))
  expect(routers).toHaveLength(2 * cfg.n_layer)
  for (const p of routers)
    expect(
      (analytic[`grad.${p.name}`].data as Float64Array).every((v) => v === 0),
      p.name,
    ).toBe(true)
  await checkAgainstDifferences(
    forward,
    weights,
    data,
    analytic,
    params.filter((p) => !routers.includes(p)).map((p) => p.name),
  )
})
