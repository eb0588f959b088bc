/**
 * Several AdamW updates of each variant family against the PyTorch reference (llm.c style): the fixtures
 * (tools/reference/make_train_fixtures.py) hold the initial float32 parameters, one fixed batch per update,
 * the reference's float64 losses and its parameters after the last update (torch.optim.AdamW). The
 * trainer's TrainingSession (forward, autodiff backward and in-graph AdamW in one ONNX Runtime run, float32)
 * must follow the same trajectory. Tolerance 1e-4 (relative to the largest value of each tensor): float32
 * rounding grows over updates, and Adam's normalized steps (lr 1e-3) make a wrong bias correction, epsilon
 * placement or weight-decay rule an error of order 1e-3 or more.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { readSafetensors, resolveConfig } from '@moas/gpt'
import { describe, expect, it } from 'vitest'
import { Xoshiro128 } from './noise'
import { TrainingSession } from './training-session'

const DIR = fileURLToPath(new URL('../test/fixtures/', import.meta.url))
const TOL = 1e-4
const cases = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -5))
  .sort()

describe('AdamW updates follow the PyTorch reference', () => {
  it('covers a variant of each family', () => {
    expect(cases).toEqual(['gqe', 'mha', 'moas', 'moas-kv', 'moas-topk'])
  })

  for (const name of cases) {
    it(`${name}: the loss of every update and every parameter after them`, async () => {
      const meta = JSON.parse(readFileSync(`${DIR}${name}.json`, 'utf8'))
      const { tensors } = readSafetensors(readFileSync(`${DIR}${name}.safetensors`), `${name}.safetensors`)
      const cfg = resolveConfig(meta.config)
      const [B, T] = tensors.get('batch.0.idx')!.shape
      const params = new Map<string, Float32Array>()
      for (const [key, t] of tensors) if (key.startsWith('init.')) params.set(key.slice(5), t.data as Float32Array)
      const o = meta.optimizer
      const session = await TrainingSession.create(
        cfg,
        { batch: B, seq: T, optim: { beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weight_decay } },
        { params, noise: new Xoshiro128(0) },
      )
      for (let t = 0; t < meta.steps; t++) {
        const r = await session.update(meta.lr, (x, y) => {
          x.set(tensors.get(`batch.${t}.idx`)!.data as BigInt64Array)
          y.set(tensors.get(`batch.${t}.targets`)!.data as BigInt64Array)
        })
        expect(Math.abs(r.loss - meta.losses[t]) / meta.losses[t], `update ${t + 1}: loss ${r.loss}, reference ${meta.losses[t]}`).toBeLessThan(TOL)
      }
      const after = await session.params()
      await session.release()
      expect([...after.keys()].sort()).toEqual([...params.keys()].sort())
      for (const [p, got] of after) {
        const want = tensors.get(`final.${p}`)!.data as Float64Array
        const scale = Math.max(...Array.from(want, Math.abs))
        const err = Math.max(...Array.from(got, (v, i) => Math.abs(v - want[i])))
        expect(err / scale, `${p}: max |moas − torch| / max |torch|`).toBeLessThan(TOL)
      }
      // the updates moved every parameter (the check would pass trivially otherwise)
      for (const [p, init] of params) expect(Math.max(...Array.from(init, (v, i) => Math.abs(v - after.get(p)![i]))), p).toBeGreaterThan(1e-5)
    })
  }
})
