import { resolveConfig } from '@moas/gpt'
import { Mulberry32 } from '@moas/tensor-core'
import { describe, expect, it } from 'vitest'
import { BatchSampler } from './data/batches'
import { EvalSession } from './eval-session'
import { buildTrainingGraph, initialParams, PAPER_OPTIM } from './graphs'
import { Xoshiro128 } from './noise'
import { TrainingSession } from './training-session'

const tiny = (over: Record<string, unknown> = {}) =>
  resolveConfig({ vocab_size: 13, block_size: 16, n_layer: 2, n_head: 4, n_embd: 32, dropout: 0.1, attention: 'moas', ...over })

const randomTokens = (n: number, V: number, seed = 1) => {
  const r = new Mulberry32(seed)
  return Int32Array.from({ length: n }, () => r.int(V))
}

/** Copy a sampler's rows into the session's batch buffers. */
const feeder = (s: BatchSampler) => (x: BigInt64Array, y: BigInt64Array) => {
  const b = s.next()
  x.set(b.x)
  y.set(b.y)
}

async function losses(cfg: ReturnType<typeof tiny>, opts: { batch: number; accum?: number; steps: number; seed?: number }) {
  const tokens = randomTokens(2000, cfg.vocab_size)
  const session = await TrainingSession.create(
    cfg,
    { batch: opts.batch, accum: opts.accum, optim: PAPER_OPTIM },
    {
      params: initialParams(cfg, opts.seed ?? 0),
      noise: new Xoshiro128(opts.seed ?? 0),
    },
  )
  const sampler = new BatchSampler(tokens, cfg.block_size, opts.batch, 5)
  const out = []
  for (let i = 0; i < opts.steps; i++) out.push(await session.update(1e-3, feeder(sampler)))
  const params = await session.params()
  await session.release()
  return { out, params }
}

describe('training graph', () => {
  it('decays ≥2-D weights (embeddings, router included) and never LayerNorm weights or biases', () => {
    const g = buildTrainingGraph(tiny({ bias: true }), { batch: 2, optim: PAPER_OPTIM }).graph
    const decay = new Map(g.params.map((p) => [p.tensor.name, p.decay]))
    expect(decay.get('transformer.wte.weight')).toBe(true)
    expect(decay.get('transformer.wpe.weight')).toBe(true)
    expect(decay.get('transformer.h.0.attn.router.0.weight')).toBe(true)
    expect(decay.get('transformer.h.0.attn.router.2.weight')).toBe(true)
    expect(decay.get('transformer.h.1.mlp.c_fc.weight')).toBe(true)
    for (const [name, d] of decay) if (/\.ln_|ln_f|\.bias$/.test(name)) expect(d, name).toBe(false)
    expect([...decay.keys()].some((n) => n.endsWith('.bias'))).toBe(true)
    // Dropout comes from caller-fed noise, and the step outputs what the loop needs.
    expect(g.dropoutMasks.length).toBeGreaterThan(0)
    expect(g.dropoutMasks.every((m) => m.input.dtype === 'bool' && m.threshold === Math.round(0.1 * 65536))).toBe(true)
    for (const o of ['loss', 'ce', 'balance', 'grad_norm', 'next.transformer.wte.weight', 'next.adam.m.transformer.wte.weight'])
      expect(g.outputs.map((t) => t.name)).toContain(o)
  })
})

describe('TrainingSession', () => {
  it('is deterministic: same seed, same losses and parameters; another seed differs', async () => {
    const cfg = tiny()
    const a = await losses(cfg, { batch: 3, steps: 3 })
    const b = await losses(cfg, { batch: 3, steps: 3 })
    expect(b.out).toEqual(a.out)
    expect(b.params.get('transformer.h.0.attn.router.0.weight')).toEqual(a.params.get('transformer.h.0.attn.router.0.weight'))
    const c = await losses(cfg, { batch: 3, steps: 3, seed: 1 })
    expect(c.out[0].loss).not.toBe(a.out[0].loss)
    expect(a.out[2].loss).toBeLessThan(a.out[0].loss) // it learns something
    expect(a.out[0].balance).toBeGreaterThan(0)
  })

  it('accum = 2 with batch B equals accum = 1 with batch 2B (no dropout, no router)', async () => {
    const cfg = tiny({ attention: 'mha', dropout: 0 })
    const whole = await losses(cfg, { batch: 4, steps: 3 })
    const accum = await losses(cfg, { batch: 2, accum: 2, steps: 3 })
    for (let i = 0; i < 3; i++) {
      expect(accum.out[i].loss).toBeCloseTo(whole.out[i].loss, 5)
      expect(accum.out[i].gradNorm).toBeCloseTo(whole.out[i].gradNorm, 4)
    }
    const name = 'transformer.h.1.mlp.c_fc.weight'
    const [p, q] = [whole.params.get(name)!, accum.params.get(name)!]
    let maxDiff = 0
    for (let i = 0; i < p.length; i++) maxDiff = Math.max(maxDiff, Math.abs(p[i] - q[i]))
    expect(maxDiff).toBeLessThan(1e-5)
  })

  it('keeps its state in JS on host providers, and refuses stateOnDevice there', async () => {
    const cfg = tiny()
    const init = () => ({ params: initialParams(cfg, 0), noise: new Xoshiro128(0) })
    const s = await TrainingSession.create(cfg, { batch: 2, optim: PAPER_OPTIM }, init())
    expect(s.stateOnDevice).toBe(false)
    await s.release()
    await expect(TrainingSession.create(cfg, { batch: 2, optim: PAPER_OPTIM, provider: 'wasm', stateOnDevice: true }, init())).rejects.toThrow(
      "stateOnDevice needs a provider whose outputs can stay on the device (webgpu), not 'wasm'; leave it unset",
    )
  })

  it('eval loss of the initial model is close to ln(vocab)', async () => {
    const cfg = tiny()
    const ev = await EvalSession.create(cfg)
    const s = new BatchSampler(randomTokens(500, 13), 16, 3, 1)
    const { loss, tokens } = await ev.meanLoss(initialParams(cfg, 0), [s.next(), s.next()])
    expect(tokens).toBe(2 * 3 * 16)
    expect(Math.abs(loss - Math.log(13))).toBeLessThan(0.05)
    await ev.release()
  })
})
