/**
 * The GPT (docs/variants.md, "GPT assembly"), nanoGPT style:
 *
 *   h = dropout(wte[idx] + wpe[0..T))
 *   each block: h = h + attn(ln_1(h));  h = h + mlp(ln_2(h))
 *   logits = ln_f(h) · wteᵀ                  (tied head)
 *
 * buildGpt adds the model to a Graph; parameters carry their checkpoint names, so graph parameter names
 * equal the tensor names of model.safetensors.
 */
import { type Dim, type Graph, GraphError, type Tensor, mulDims, ops } from '@moas/tensor-core'
import { type GptConfig, isGqe } from './config'
import { gqe } from './gqe'
import { type BuildContext, INIT_STD, layerNorm, mlp } from './layers'
import { type AttentionOutput, moas, moasTopKDense, plainScheme, staticMoas } from './moas'
import { moasTopKRouted } from './routed'

export interface BuildOptions {
  batch: Dim
  /** Sequence length: static, or symbolic (positions come from Range over the run-time length). */
  seq: Dim
  /** Dropout on (unless dropout is 0) and loss = ce + balance_weight · balance. */
  training: boolean
  /** Add the `targets` input and the losses. */
  withTargets: boolean
  /** Register each layer's router gates (`gates.{i}`) and chosen experts (`chosen.{i}`) as graph outputs. */
  routingStats?: boolean
  /** Parameter and activation dtype (default float32; float64 for gradient checks). */
  dtype?: 'float32' | 'float64'
  /** 'none' (exact erf GELU, the spec) unless 'tanh' is asked for: ONNX Runtime has no float64 Erf. */
  gelu?: 'none' | 'tanh'
  /**
   * moas-topk only: compute attention only for the queries routed to each branch (routed.ts). Default:
   * on for inference graphs with batch 1, off otherwise (training uses the dense formulation).
   */
  routedTopK?: boolean
}

export interface GptGraph {
  idx: Tensor
  targets: Tensor | null
  logits: Tensor
  /** Mean cross entropy in nats (null without targets). */
  ceLoss: Tensor | null
  /** Router balance loss averaged over layers (0 for variants without a router). */
  balanceLoss: Tensor
  /** ce + balance_weight · balance when training, else ce (null without targets). */
  loss: Tensor | null
  /** Per layer: softmax gates ([B,T,3] MoAS, [B,T,G,M] GQE); empty for unrouted variants. */
  gates: Tensor[]
  /** Per layer: chosen experts, int64 ([B,T,k] moas-topk, [B,T,G,k] GQE); empty otherwise. */
  chosen: Tensor[]
}

export function buildGpt(graph: Graph, cfg: GptConfig, opts: BuildOptions): GptGraph {
  const dtype = opts.dtype ?? 'float32'
  const { batch: B, seq: T } = opts
  if (typeof T === 'number' && T > cfg.block_size) throw new GraphError(`buildGpt: seq ${T} exceeds block_size ${cfg.block_size}; the position embedding has ${cfg.block_size} rows`)
  const ctx: BuildContext = { training: opts.training, gelu: opts.gelu ?? 'none' }
  const routed = opts.routedTopK ?? (!opts.training && B === 1)
  if (routed && opts.training) throw new GraphError('buildGpt: routedTopK is an inference path; training graphs use the dense top-k formulation')

  const idx = graph.input('idx', 'int64', [B, T], 'token ids')
  const targets = opts.withTargets ? graph.input('targets', 'int64', [B, T], 'next-token ids') : null
  const C = cfg.n_embd
  const wte = graph.param('transformer.wte.weight', [cfg.vocab_size, C], { init: { kind: 'normal', std: INIT_STD }, dtype })
  const wpe = graph.param('transformer.wpe.weight', [cfg.block_size, C], { init: { kind: 'normal', std: INIT_STD }, dtype })
  const positions = ops.range(ops.dimOf(idx, 1), T)
  let h = ops.dropout(ops.add(ops.gather(wte, idx), ops.gather(wpe, positions)), cfg.dropout, ctx.training)

  const balances: Tensor[] = []
  const gates: Tensor[] = []
  const chosen: Tensor[] = []
  for (let i = 0; i < cfg.n_layer; i++) {
    const prefix = `transformer.h.${i}.`
    const a = graph.scope(`h${i}`, () => {
      const out = attention(layerNorm(h, `${prefix}ln_1`, cfg.bias), cfg, `${prefix}attn.`, ctx, routed, i)
      h = ops.add(h, out.y)
      h = ops.add(h, mlp(layerNorm(h, `${prefix}ln_2`, cfg.bias), cfg, `${prefix}mlp.`, ctx))
      return out
    })
    if (a.balance) balances.push(a.balance)
    if (a.gates) gates.push(opts.routingStats ? graph.output(`gates.${i}`, a.gates) : a.gates)
    if (a.chosen) chosen.push(opts.routingStats ? graph.output(`chosen.${i}`, a.chosen) : a.chosen)
  }
  const logits = ops.linear(layerNorm(h, 'transformer.ln_f', cfg.bias), wte) // tied head: ln_f(h) · wteᵀ

  const balanceLoss = balances.length ? ops.mul(ops.sum(balances), 1 / cfg.n_layer) : graph.scalar(0, dtype)
  let ceLoss: Tensor | null = null
  let loss: Tensor | null = null
  if (targets) {
    const N = mulDims(B, T)
    ceLoss = ops.crossEntropy(ops.reshape(logits, [N, cfg.vocab_size]), ops.reshape(targets, [N]))
    loss = opts.training && balances.length && cfg.balance_weight > 0 ? ops.add(ceLoss, ops.mul(balanceLoss, cfg.balance_weight)) : ceLoss
  }
  return { idx, targets, logits, ceLoss, balanceLoss, loss, gates, chosen }
}

/** The attention layer of the configured variant, on the normalized block input x. */
function attention(x: Tensor, cfg: GptConfig, prefix: string, ctx: BuildContext, routed: boolean, layer: number): AttentionOutput {
  const v = cfg.attention
  if (v === 'mha' || v === 'gqa' || v === 'mqa') return plainScheme(x, cfg, v, prefix, ctx)
  if (v === 'static-moas') return staticMoas(x, cfg, prefix, ctx)
  if (v === 'moas') return moas(x, cfg, prefix, ctx)
  if (v === 'moas-topk') return routed ? moasTopKRouted(x, cfg, prefix, layer) : moasTopKDense(x, cfg, prefix, ctx)
  if (isGqe(v)) return gqe(x, cfg, prefix, ctx)
  throw new GraphError(`buildGpt: unknown attention variant '${v}'`)
}
