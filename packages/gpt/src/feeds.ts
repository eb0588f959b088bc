/**
 * A model's weights as graph inputs: the logits graph (eval mode, weights fed, so code whose parameters
 * change every step can run it) and parameters → feeds, for inference and the trainer's evaluations alike.
 */
import { type Dim, Graph, GraphError, type HostTensor, hostTensor, type ParamInfo } from '@moas/tensor-core'
import type { GptConfig } from './config'
import { isKvRouteControl } from './moasKv'
import { buildGpt, controlDecodeRefusal } from './model'

/** Eval mode, no targets: input `idx` [batch, seq], output `logits` [batch, seq, vocab]; seq symbolic. */
export function buildLogitsGraph(cfg: GptConfig, opts: { batch?: Dim } = {}): Graph {
  if (isKvRouteControl(cfg)) throw new GraphError(controlDecodeRefusal(cfg))
  const g = new Graph(`logits-${cfg.attention}`)
  const m = buildGpt(g, cfg, { batch: opts.batch ?? 1, seq: 'seq', training: false, withTargets: false })
  g.output('logits', m.logits)
  return g
}

/** Parameters as feeds for a graph that takes them as inputs. */
export function paramFeeds(params: ReadonlyMap<string, Float32Array>, infos: readonly ParamInfo[]): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {}
  for (const p of infos) out[p.tensor.name] = hostTensor('float32', p.tensor.shape as number[], params.get(p.tensor.name)!)
  return out
}
