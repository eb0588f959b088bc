// The README's example, verbatim apart from the import path and the final assertions.
import { expect, it } from 'vitest'
import { adamw, adamwScalars, Graph, grad, type HostTensor, hostTensor, initParams, ops, Session } from './index'
import { testProvider } from './testing/provider'

it('README example: build → grad → adamw → Session.run', async () => {
  // --- README example begins
  // 1. Build: a small classifier, [batch, 4] features → 3 classes. Symbolic batch, static features.
  const g = new Graph('mlp')
  const x = g.input('x', 'float32', ['batch', 4], 'features, one row per example')
  const labels = g.input('labels', 'int64', ['batch'])
  const w1 = g.param('fc1.weight', [16, 4], { init: { kind: 'normal', std: 0.5 } }) // [out, in], decay on
  const b1 = g.param('fc1.bias', [16], { init: { kind: 'zeros' } }) //                  rank 1: decay off
  const w2 = g.param('fc2.weight', [3, 16], { init: { kind: 'normal', std: 0.5 } })
  const logits = ops.linear(ops.gelu(ops.linear(x, w1, b1), 'tanh'), w2)
  const loss = g.output('loss', ops.crossEntropy(logits, labels))

  // 2. Backward graph, 3. AdamW update: both appended to the same graph.
  const grads = grad(
    loss,
    g.params.map((p) => p.tensor),
  )
  const opt = adamw(g, g.params, grads, { weightDecay: 0.1, clipNorm: 1.0 })

  // 4. One session.run = forward + backward + update. Parameters and moments go in, next.* come out.
  const session = await Session.create(g, { provider: testProvider() }) // 'cpu' (onnxruntime-node) or 'wasm'
  const state: Record<string, HostTensor> = {}
  for (const [name, value] of initParams(g, 42)) {
    const shape = g.params.find((p) => p.tensor.name === name)!.tensor.shape as number[]
    const s = opt.state.find((st) => st.param === name)!
    state[name] = hostTensor('float32', shape, value)
    state[s.m] = hostTensor('float32', shape)
    state[s.v] = hostTensor('float32', shape)
  }
  const batch = {
    x: hostTensor('float32', [4, 4], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]),
    labels: hostTensor('int64', [4], [0, 1, 2, 0]),
  }
  const losses: number[] = []
  for (let t = 1; t <= 50; t++) {
    const sc = adamwScalars(t, 1e-2) // lr and bias corrections are inputs: the graph never changes
    const out = await session.run({
      ...batch,
      ...state,
      lr: hostTensor('float32', [], [sc.lr]),
      bias_correction1: hostTensor('float32', [], [sc.biasCorrection1]),
      bias_correction2: hostTensor('float32', [], [sc.biasCorrection2]),
    })
    for (const s of opt.state) Object.assign(state, { [s.param]: out[s.nextParam], [s.m]: out[s.nextM], [s.v]: out[s.nextV] })
    losses.push(out.loss.data[0] as number)
  }
  // --- README example ends
  expect(losses[0]).toBeGreaterThan(0.5)
  expect(losses.at(-1)!).toBeLessThan(0.1 * losses[0])
  expect(session.provider).toBe(testProvider())
})
