/**
 * The main evidence: every variant's forward and backward against the independent float64 PyTorch
 * reference (tools/reference/moas_reference.py, fixtures in packages/gpt/test/fixtures). Float32 here,
 * relative 1e-5.
 */
import { Graph, grad, type HostTensor, hostTensor, Session } from '@moas/tensor-core'
import { describe, expect, it } from 'vitest'
import { resolveConfig } from './config'
import { KV_BUDGET_TARGET } from './moasKv'
import { buildGpt } from './model'
import { fixtureNames, loadFixture, paramFeeds } from './reference-fixtures'
import { maxAbsErr, relErr } from './testing/index'
import { VARIANT_TABLE, VARIANTS } from './variants'

const TOL = 1e-5
const names = fixtureNames()

describe('PyTorch reference fixtures', () => {
  it('covers every variant', () => {
    const variants = new Set(names.map((n) => loadFixture(n).config.attention))
    expect([...variants].sort()).toEqual([...VARIANTS].sort())
    // each registry row names its default form's fixture, and that fixture is of the row's variant
    for (const v of VARIANTS) expect(loadFixture(VARIANT_TABLE[v].fixture).config.attention, v).toBe(v)
  })

  for (const name of names) {
    it(`${name}: logits, losses, gates and every gradient match`, async () => {
      const f = loadFixture(name)
      const cfg = resolveConfig(f.config)
      const [B, T] = f.tensors.get('input.idx')!.shape
      const g = new Graph(name)
      const m = buildGpt(g, cfg, { batch: B, seq: T, training: true, withTargets: true, routingStats: true })
      g.output('logits', m.logits)
      g.output('ce_loss', m.ceLoss!)
      g.output('balance_loss', m.balanceLoss)
      g.output('train_loss', m.loss!)
      const params = g.params.map((p) => p.tensor)
      grad(m.loss!, params).forEach((gr, i) => g.output(`grad.${params[i].name}`, gr))

      // the graph's parameters are exactly the reference's, with the same shapes
      const ref = [...f.tensors.keys()]
        .filter((k) => k.startsWith('param.'))
        .map((k) => k.slice(6))
        .sort()
      expect(params.map((p) => p.name).sort()).toEqual(ref)
      for (const p of params) expect(p.shape, p.name).toEqual(f.tensors.get(`param.${p.name}`)!.shape)

      const s = await Session.create(g)
      // moas-kv's training graph takes its budget's target; the reference holds it at kv_budget
      const budget: Record<string, HostTensor> = g.inputs.some((t) => t.name === KV_BUDGET_TARGET)
        ? { [KV_BUDGET_TARGET]: hostTensor('float32', [], new Float32Array([cfg.kv_budget!])) }
        : {}
      const out = await s.run({ ...paramFeeds(f), ...budget, idx: toHost(f, 'input.idx'), targets: toHost(f, 'input.targets') })
      await s.release()

      let worst = { err: 0, what: '' }
      const close = (what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = TOL) => {
        expect(got.length, what).toBe(want.length)
        const e = Math.max(relErr(got, want), maxAbsErr(got, want))
        if (e > worst.err) worst = { err: e, what }
        expect(relErr(got, want), `${what}: norm-wise relative error`).toBeLessThan(tol)
        expect(maxAbsErr(got, want), `${what}: max abs error / max |ref|`).toBeLessThan(tol)
      }
      close('logits', out.logits.data as Float32Array, f.tensors.get('out.logits')!.data as Float64Array)
      expect(Math.abs(Number(out.ce_loss.data[0]) - f.ce_loss) / f.ce_loss, 'ce_loss').toBeLessThan(TOL)
      expect(Math.abs(Number(out.train_loss.data[0]) - f.train_loss) / f.train_loss, 'train_loss').toBeLessThan(TOL)
      if (f.balance_loss === 0) expect(Number(out.balance_loss.data[0])).toBe(0)
      else expect(Math.abs(Number(out.balance_loss.data[0]) - f.balance_loss) / f.balance_loss, 'balance_loss').toBeLessThan(TOL)

      const refGates = [...f.tensors.keys()].filter((k) => k.startsWith('out.gates.'))
      expect(refGates.length, 'gates per layer').toBe(m.gates.length)
      for (const k of refGates) close(k, out[k.slice(4)].data as Float32Array, f.tensors.get(k)!.data as Float64Array)

      // Gradients. A key bias (k_proj.bias) has an exactly zero gradient: adding the same vector to every
      // key shifts all of a query's scores equally and softmax ignores that. The reference holds ~1e-17
      // rounding there, float32 ~1e-9, so relative error is meaningless: such tensors must be ~0 instead.
      const gradNorm = Math.hypot(...params.map((p) => norm(f.tensors.get(`grad.${p.name}`)!.data as Float64Array)))
      for (const p of params) {
        const got = out[`grad.${p.name}`].data as Float32Array
        const want = f.tensors.get(`grad.${p.name}`)!.data as Float64Array
        if (norm(want) < 1e-12 * gradNorm) {
          expect(p.name, 'only key biases have a zero gradient').toMatch(/k_proj\.bias$/)
          expect(norm(got) / gradNorm, `grad.${p.name} should be ~0`).toBeLessThan(TOL)
        } else close(`grad.${p.name}`, got, want)
      }
      console.log(`${name}: worst relative error ${worst.err.toExponential(2)} (${worst.what})`)
    })
  }
})

const norm = (a: ArrayLike<number>) => Math.hypot(...Array.from(a))

function toHost(f: ReturnType<typeof loadFixture>, key: string) {
  const t = f.tensors.get(key)!
  return hostTensor('int64', t.shape, t.data as BigInt64Array)
}
