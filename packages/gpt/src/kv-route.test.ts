import { Graph, GraphError, hostTensor, Session } from '@moas/tensor-core'
import { describe, expect, it } from 'vitest'
import { resolveConfig } from './config'
import { buildLogitsGraph } from './feeds'
import { KV_BUDGET_TARGET, KV_ROUTE_LEVELS } from './moasKv'
import { buildGpt } from './model'
import { feedsOf, idxTensor, maxAbsErr, randomWeights, tokens, toNumbers } from './testing'

const B = 2
const T = 12
const base = { vocab_size: 11, block_size: T, n_layer: 2, n_head: 4, n_embd: 16, dropout: 0, attention: 'moas-kv' } as const
const routed = resolveConfig(base)
const control = resolveConfig({ ...base, kv_route: 'rule' })
const ids = tokens(B * T, base.vocab_size, 5)

describe('moas-kv controls (kv_route random / rule)', () => {
  it("fed the levels the router chose, a control computes the router's loss exactly (the fed path is the variant's, less the router)", async () => {
    const g = new Graph('routed')
    const m = buildGpt(g, routed, { batch: B, seq: T, training: false, withTargets: true, routingStats: true })
    g.output('ce', m.ceLoss!)
    const weights = randomWeights(g, 3)
    const targets = idxTensor(
      ids.map((t) => (t * 7 + 3) % base.vocab_size),
      B,
      T,
    )
    const s = await Session.create(g)
    const out = await s.run({ ...feedsOf(weights, g), idx: idxTensor(ids, B, T), targets })
    await s.release()
    const chosen = m.chosen.map((c) => toNumbers(out[c.name].data as BigInt64Array)) // per layer [B, T, 1]
    // the router must have used more than one level, or the check would not see a wrong level's heads
    expect(new Set(chosen.flat()).size).toBeGreaterThan(1)

    const gc = new Graph('control')
    const mc = buildGpt(gc, control, { batch: B, seq: T, training: false, withTargets: true, routingStats: true })
    gc.output('ce', mc.ceLoss!)
    expect(gc.params.map((p) => p.tensor.name)).toEqual(g.params.map((p) => p.tensor.name).filter((n) => !n.includes('.router.')))
    const sc = await Session.create(gc)
    const levels = hostTensor('int64', [base.n_layer, B, T], chosen.flat())
    const fed = await sc.run({ ...feedsOf(weights, gc), idx: idxTensor(ids, B, T), targets, [KV_ROUTE_LEVELS]: levels })
    const other = await sc.run({
      ...feedsOf(weights, gc),
      idx: idxTensor(ids, B, T),
      targets,
      [KV_ROUTE_LEVELS]: hostTensor(
        'int64',
        [base.n_layer, B, T],
        chosen.flat().map((l) => (l + 1) % 3),
      ),
    })
    await sc.release()
    expect(maxAbsErr(fed.ce.data as Float32Array, out.ce.data as Float32Array)).toBeLessThan(1e-6)
    expect(Math.abs(Number(other.ce.data[0]) - Number(out.ce.data[0]))).toBeGreaterThan(1e-4)
    // its routing outputs are the fed choice, so eval statistics and measured bytes read what it cached
    expect(toNumbers(fed[mc.chosen[1].name].data as BigInt64Array)).toEqual(chosen[1])
  })

  it('a training graph takes the fed levels and the budget target as inputs, with the budget term in its loss', () => {
    const g = new Graph('train')
    g.dropoutNoise = true
    const m = buildGpt(g, control, { batch: B, seq: T, training: true, withTargets: true })
    expect(g.inputs.map((t) => t.name)).toEqual(expect.arrayContaining([KV_ROUTE_LEVELS, KV_BUDGET_TARGET]))
    expect(m.loss).not.toBe(m.ceLoss)
  })

  it('has no decoder or logits graph: refused with the reason and what to use instead', () => {
    const refusal =
      /study control \(kv_route "rule"\): its levels come from the trainer \(kv_route_levels\).*Generate with a moas-kv model trained with its router/
    expect(() => buildLogitsGraph(control)).toThrow(GraphError)
    expect(() => buildLogitsGraph(control)).toThrow(refusal)
    expect(() =>
      buildGpt(new Graph('d'), control, { batch: 'batch_size', seq: 'sequence_length', training: false, withTargets: false, kvCache: true }),
    ).toThrow(refusal)
    expect(() => buildLogitsGraph(routed)).not.toThrow()
  })
})
