/**
 * The graphs a training run needs, as gpt and tensor-core build them:
 * - Training step (accum = 1): one graph does forward + backward + AdamW, so one `session.run` per step.
 *   Parameters and Adam moments go in as inputs and come back as `next.*` outputs.
 * - Gradient accumulation (accum > 1): a grads-only graph per micro-batch and a small apply graph (clipping +
 *   AdamW on the mean gradient); see training-session.ts for why the sum happens in JavaScript.
 * - Dropout: the training graphs are built with `graph.dropoutNoise = true`; every dropout site is a bool
 *   keep-mask input the session fills from a seeded generator (noise.ts).
 * - Eval (no dropout, no balance loss): the same parameter names, so training parameters feed it as they are.
 */
import { buildGpt, type GptConfig } from '@moas/gpt'
import { type AdamWGraph, adamw, Graph, grad, initParams, type ParamInfo } from '@moas/tensor-core'

export interface OptimOptions {
  beta1: number
  beta2: number
  eps: number
  weightDecay: number
  /** Clip gradients to this global L2 norm (off when undefined). */
  clipNorm?: number
}

/** The paper's AdamW: betas (0.9, 0.99), eps 1e-8, weight decay 0.1 on ≥2-D tensors, no clipping. */
export const PAPER_OPTIM: Readonly<OptimOptions> = { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 }

export interface TrainingGraphOptions {
  batch: number
  /** Sequence length (default block_size). */
  seq?: number
  optim: OptimOptions
}

export const gradName = (param: string) => `grad.${param}`

/** The model in training mode with noise-input dropout, and its loss outputs `loss`, `ce`, `balance`. */
function trainingModel(name: string, cfg: GptConfig, batch: number, seq: number) {
  const g = new Graph(name)
  g.dropoutNoise = true
  const m = buildGpt(g, cfg, { batch, seq, training: true, withTargets: true })
  g.output('loss', m.loss!, 'ce + balance_weight · balance')
  g.output('ce', m.ceLoss!, 'mean cross entropy (nats)')
  g.output('balance', m.balanceLoss, 'router balance loss (0 without a router)')
  return { g, m, params: g.params.map((p) => p.tensor) }
}

/** A training graph and the names the loop feeds and fetches, as the builders returned them. */
export interface TrainingGraph {
  graph: Graph
  /** The token inputs (gpt's `idx` and `targets`). */
  idx: string
  targets: string
  /** The optimizer's inputs and outputs (fused step and apply graph), or null (grads graph). */
  optimizer: AdamWGraph | null
  /** Per parameter, the gradient output (grads graph) or input (apply graph) name; empty for the fused step. */
  grads: { param: string; grad: string }[]
}

/**
 * The fused training step: forward, gradient of the loss w.r.t. every parameter, AdamW (weight decay on
 * parameters whose `decay` flag is set: ≥2-D tensors, i.e. Linear and embedding weights and the router;
 * never LayerNorm weights or biases). Outputs loss, ce, balance, grad_norm and next.* (params, adam.m.*,
 * adam.v.*). Inputs: idx, targets, noise/*, lr, bias_correction1, bias_correction2, params, moments.
 */
export function buildTrainingGraph(cfg: GptConfig, opts: TrainingGraphOptions): TrainingGraph {
  const { g, m, params } = trainingModel(`train-${cfg.attention}`, cfg, opts.batch, opts.seq ?? cfg.block_size)
  const optimizer = adamw(g, g.params, grad(m.loss!, params), opts.optim)
  return { graph: g, idx: m.idx.name, targets: m.targets!.name, optimizer, grads: [] }
}

/** Forward + backward only (for gradient accumulation): outputs loss, ce, balance and grad.<param>. */
export function buildGradGraph(cfg: GptConfig, opts: { batch: number; seq?: number }): TrainingGraph {
  const { g, m, params } = trainingModel(`grads-${cfg.attention}`, cfg, opts.batch, opts.seq ?? cfg.block_size)
  const grads = grad(m.loss!, params).map((gr, i) => ({ param: params[i].name, grad: g.output(gradName(params[i].name), gr).name }))
  return { graph: g, idx: m.idx.name, targets: m.targets!.name, optimizer: null, grads }
}

/** AdamW on fed gradients (inputs grad.<param>), for gradient accumulation. Same state names as the fused graph. */
export function buildApplyGraph(params: readonly ParamInfo[], optim: OptimOptions): TrainingGraph {
  const g = new Graph('apply')
  for (const p of params) g.param(p.tensor.name, p.tensor.shape as number[], { init: p.init, decay: p.decay, dtype: p.tensor.dtype })
  const inputs = params.map((p) => g.input(gradName(p.tensor.name), p.tensor.dtype, p.tensor.shape))
  const optimizer = adamw(g, g.params, inputs, optim)
  return { graph: g, idx: '', targets: '', optimizer, grads: params.map((p, i) => ({ param: p.tensor.name, grad: inputs[i].name })) }
}

/** Eval mode (no dropout) with targets: output `ce`, the mean cross entropy. Batch is symbolic. */
export function buildEvalGraph(cfg: GptConfig, opts: { seq?: number } = {}): Graph {
  return evalGraph(cfg, opts).graph
}
export function evalGraph(cfg: GptConfig, opts: { seq?: number } = {}) {
  const g = new Graph(`eval-${cfg.attention}`)
  const m = buildGpt(g, cfg, { batch: 'batch', seq: opts.seq ?? cfg.block_size, training: false, withTargets: true, routingStats: true })
  g.output('ce', m.ceLoss!)
  return { graph: g, idx: m.idx.name, targets: m.targets!.name, gates: m.gates.map((t) => t.name) }
}

/** Freshly initialized parameters (the paper's init) from a seed; the same for every graph of a config. */
export function initialParams(cfg: GptConfig, seed: number): Map<string, Float32Array> {
  const g = new Graph('init')
  buildGpt(g, cfg, { batch: 1, seq: 1, training: false, withTargets: false })
  return initParams(g, seed) as Map<string, Float32Array>
}

/** Shapes and decay flags of the model's parameters, in graph order. */
export function paramInfos(cfg: GptConfig): ParamInfo[] {
  const g = new Graph('info')
  buildGpt(g, cfg, { batch: 1, seq: 1, training: false, withTargets: false })
  return g.params
}
