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
import { type AttentionKernel, LayerKvCache, useAttentionKernel, visibilityMask } from '@moas/attention-schemes'
import { addDims, type Dim, type Graph, GraphError, mulDims, ops, type Tensor } from '@moas/tensor-core'
import type { GptConfig } from './config'
import { type BuildContext, INIT_STD, type LevelCache, layerNorm, mlp } from './layers'
import { isKvRouteControl, KV_ROUTE_LEVELS } from './moasKv'
import { auxLossWeight, kvHeadsPerLayer, VARIANT_TABLE, VARIANTS } from './variants'

export interface BuildOptions {
  batch: Dim
  /** Sequence length: static, or symbolic (positions come from Range over the run-time length). */
  seq: Dim
  /** Dropout on (unless dropout is 0) and loss = ce + balance_weight · balance. */
  training: boolean
  /** Add the `targets` input and the losses. */
  withTargets: boolean
  /** Register each layer's router gates and chosen experts as graph outputs (DECODER_IO.gates / chosen). */
  routingStats?: boolean
  /** Parameter and activation dtype (default float32; float64 for gradient checks; float16 for inference exports). */
  dtype?: 'float32' | 'float64' | 'float16'
  /** 'none' (exact erf GELU, the spec) unless 'tanh' is asked for: ONNX Runtime has no float64 Erf. */
  gelu?: 'none' | 'tanh'
  /**
   * moas-kv: 'straight-through' (default) passes the gates' gradient through the hard choice; 'none' gives
   * the router no gradient, so every other gradient is an exact derivative of the loss (finite-difference
   * checks).
   */
  routerGradient?: 'straight-through' | 'none'
  /**
   * moas-topk only: compute attention only for the queries routed to each branch (routed.ts). Default:
   * on for inference graphs, off for training (which uses the dense formulation).
   */
  routedTopK?: boolean
  /**
   * moas-topk's routed path in a graph with a static sequence length and no KV cache: attend the routed
   * queries in blocks of this many, each against the keys up to its largest position, so that no work
   * goes to keys every query of a block has masked (default ROUTED_QUERY_BLOCK = 512; 0: one call over
   * all keys, which is also what symbolic lengths and decoder graphs get).
   */
  routedQueryBlock?: number
  /**
   * Build the merged decoder graph (prefill when the past is empty, decode when T = 1) with the input and
   * output names of published ONNX decoders (DECODER_IO): input_ids, attention_mask, position_ids and
   * past_key_values.{i}.key/value in; logits and present.{i}.key/value out. Inference only.
   */
  kvCache?: boolean
  /**
   * kvCache only: whether the decoder takes left-padded batches (default true). With `false`,
   * attention_mask must be all ones (callers check it: DecoderSession does) and the attention calls learn
   * that their mask is plain causality over the cache (`causalSuffix`), so memoryEfficientAttention attends
   * without it — the long-context prefill path. Padded batches need the default.
   */
  padding?: boolean
  /**
   * kvCache only: what the graph returns of the cache. 'present' (default, what ONNX decoder clients
   * expect): present.{i}.key/value, the whole cache [B, kv heads, P + T, d]. 'appended': only this run's
   * new positions, appended.{i}.key/value [B, kv heads, T, d], for a caller that keeps the cache itself
   * (DecoderSession): returning a tensor from ONNX Runtime to JS costs ~100 ms per 128 MiB on this CPU
   * (`pnpm bench --bench ort-io`), more than a step's kernels at long contexts, while feeding one is cheap.
   * 'levels' (variants whose registry row has `levelCache`: moas-kv): a cache that holds what each token
   * wrote and nothing else. Per layer i and level j the past is past_levels.{i}.{j}.key/value
   * [B, level heads, P_ij, d] with past_levels.{i}.{j}.valid bool [B, P_ij] (rows of a batch hold different
   * counts: the rest is padding), attention_mask covers only the new positions [B, T], and the graph returns
   * every new position's heads at every level (new_levels.{i}.{j}.key/value [B, level heads, T, d]) and
   * chosen.{i} [B, T, 1]: the caller keeps each token's chosen level.
   */
  cacheOutputs?: 'present' | 'appended' | 'levels'
  /**
   * The attention core's implementation for every attention call of this graph (default: the composed
   * reference, `composedAttention`). The long-context work swaps in a memory-efficient kernel here.
   */
  attentionKernel?: AttentionKernel
}

/** Names of a decoder graph's inputs and outputs, as published ONNX decoder models (and their clients) use them. */
export const DECODER_IO = {
  inputIds: 'input_ids',
  attentionMask: 'attention_mask',
  positionIds: 'position_ids',
  /** Per layer; a string such as '%d' gives the pattern clients like onnxruntime-genai take. */
  pastKey: (layer: number | string) => `past_key_values.${layer}.key`,
  pastValue: (layer: number | string) => `past_key_values.${layer}.value`,
  logits: 'logits',
  presentKey: (layer: number | string) => `present.${layer}.key`,
  presentValue: (layer: number | string) => `present.${layer}.value`,
  /** buildGpt's `cacheOutputs: 'appended'`: only the new positions' keys and values. */
  appendedKey: (layer: number | string) => `appended.${layer}.key`,
  appendedValue: (layer: number | string) => `appended.${layer}.value`,
  /** buildGpt's `routingStats`: a routed layer's softmax gates and chosen experts. */
  gates: (layer: number | string) => `gates.${layer}`,
  chosen: (layer: number | string) => `chosen.${layer}`,
  /** cacheOutputs 'levels': level j's cached keys, values and validity of layer i, and its new positions' heads. */
  pastLevelKey: (layer: number | string, level: number | string) => `past_levels.${layer}.${level}.key`,
  pastLevelValue: (layer: number | string, level: number | string) => `past_levels.${layer}.${level}.value`,
  pastLevelValid: (layer: number | string, level: number | string) => `past_levels.${layer}.${level}.valid`,
  newLevelKey: (layer: number | string, level: number | string) => `new_levels.${layer}.${level}.key`,
  newLevelValue: (layer: number | string, level: number | string) => `new_levels.${layer}.${level}.value`,
  /** Symbolic dims: batch, new positions T, cached positions P. */
  dims: { batch: 'batch_size', seq: 'sequence_length', past: 'past_sequence_length' },
} as const

/**
 * A decoder graph's cache tensors, per layer: past inputs [B, kv heads, P, d] and present outputs
 * [B, kv heads, P+T, d] (with `cacheOutputs: 'appended'`, the appended outputs [B, kv heads, T, d]).
 */
export interface DecoderTensors {
  attentionMask: Tensor
  positionIds: Tensor
  past: { key: Tensor; value: Tensor }[]
  present: { key: Tensor; value: Tensor }[]
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
  /** The cache inputs and outputs of a decoder graph (kvCache), else null. */
  decoder: DecoderTensors | null
}

/** Why a moas-kv control (kv_route random / rule) has no decoder or logits graph. */
export const controlDecodeRefusal = (cfg: GptConfig) =>
  `this moas-kv model is a study control (kv_route "${cfg.kv_route}"): its levels come from the trainer (${KV_ROUTE_LEVELS}), not from a router, so it has no decoder; it trains and evaluates only. Generate with a moas-kv model trained with its router (kv_route "router", the default)`

export function buildGpt(graph: Graph, cfg: GptConfig, opts: BuildOptions): GptGraph {
  const dtype = opts.dtype ?? 'float32'
  const { batch: B, seq: T } = opts
  if (typeof T === 'number' && T > cfg.block_size)
    throw new GraphError(`buildGpt: seq ${T} exceeds block_size ${cfg.block_size}; the position embedding has ${cfg.block_size} rows`)
  const ctx: BuildContext = { training: opts.training, gelu: opts.gelu ?? 'none', routedQueryBlock: opts.routedQueryBlock, routerGradient: opts.routerGradient }
  const routed = opts.routedTopK ?? !opts.training
  if (opts.routedQueryBlock !== undefined && !(Number.isInteger(opts.routedQueryBlock) && opts.routedQueryBlock >= 0))
    throw new GraphError(
      `buildGpt: routedQueryBlock must be a whole number of routed queries per attention call (0 for one call), got ${opts.routedQueryBlock}`,
    )
  if (routed && opts.training) throw new GraphError('buildGpt: routedTopK is an inference path; training graphs use the dense top-k formulation')
  if (opts.kvCache && (opts.training || opts.withTargets))
    throw new GraphError('buildGpt: kvCache builds an inference decoder graph; build training and loss graphs without it')

  if (opts.kvCache && isKvRouteControl(cfg)) throw new GraphError(controlDecodeRefusal(cfg))
  if (opts.padding !== undefined && !opts.kvCache) throw new GraphError('buildGpt: padding is an option of kvCache decoder graphs')
  if (opts.cacheOutputs !== undefined && !opts.kvCache) throw new GraphError('buildGpt: cacheOutputs is an option of kvCache decoder graphs')
  const levels = opts.cacheOutputs === 'levels'
  if (levels && !VARIANT_TABLE[cfg.attention].levelCache)
    throw new GraphError(
      `buildGpt: cacheOutputs 'levels' is for variants that route what each token caches (${VARIANTS.filter((v) => VARIANT_TABLE[v].levelCache).join(', ')}), not '${cfg.attention}'`,
    )
  if (levels && opts.attentionKernel) throw new GraphError("buildGpt: cacheOutputs 'levels' runs the composed core; leave attentionKernel unset")
  if (opts.attentionKernel) useAttentionKernel(graph, opts.attentionKernel)
  const idx = graph.input(opts.kvCache ? DECODER_IO.inputIds : 'idx', 'int64', [B, T], 'token ids')
  const targets = opts.withTargets ? graph.input('targets', 'int64', [B, T], 'next-token ids') : null
  const C = cfg.n_embd
  const wte = graph.param('transformer.wte.weight', [cfg.vocab_size, C], { init: { kind: 'normal', std: INIT_STD }, dtype })
  const wpe = graph.param('transformer.wpe.weight', [cfg.block_size, C], { init: { kind: 'normal', std: INIT_STD }, dtype })
  const decoder = opts.kvCache && !levels ? decoderInputs(graph, cfg, idx, dtype) : null
  const levelInputs = opts.kvCache && levels ? levelDecoderInputs(graph, cfg, idx, dtype) : null
  const positions = decoder?.positionIds ?? levelInputs?.positionIds ?? ops.range(ops.dimOf(idx, 1), T)
  let h = ops.dropout(ops.add(ops.gather(wte, idx), ops.gather(wpe, positions)), cfg.dropout, ctx.training)

  const balances: Tensor[] = []
  const gates: Tensor[] = []
  const chosen: Tensor[] = []
  for (let i = 0; i < cfg.n_layer; i++) {
    const prefix = `transformer.h.${i}.`
    const a = graph.scope(`h${i}`, () => {
      const cache = decoder
        ? new LayerKvCache(decoder.past[i].key, decoder.past[i].value, decoder.mask, decoder.querySlots, decoder.keyValid, opts.padding === false)
        : undefined
      const levelCache: LevelCache | undefined = levelInputs ? { ...levelInputs.shared, past: levelInputs.past[i], written: [] } : undefined
      const out = VARIANT_TABLE[cfg.attention].build(layerNorm(h, `${prefix}ln_1`, cfg.bias), cfg, `${prefix}attn.`, { ...ctx, cache, levelCache }, i, routed)
      if (cache) decoder!.present.push(opts.cacheOutputs === 'appended' ? cache.appended() : cache.present())
      levelCache?.written.forEach((w, j) => {
        graph.output(DECODER_IO.newLevelKey(i, j), w.key, `the new positions' keys at level ${j} [batch, level heads, new, head dim]`)
        graph.output(DECODER_IO.newLevelValue(i, j), w.value, `the new positions' values at level ${j}`)
      })
      h = ops.add(h, out.y)
      h = ops.add(h, mlp(layerNorm(h, `${prefix}ln_2`, cfg.bias), cfg, `${prefix}mlp.`, ctx))
      return out
    })
    if (a.balance) balances.push(a.balance)
    if (a.gates) gates.push(opts.routingStats ? graph.output(DECODER_IO.gates(i), a.gates) : a.gates)
    if (a.chosen) chosen.push(opts.routingStats || levelInputs ? graph.output(DECODER_IO.chosen(i), a.chosen) : a.chosen)
  }
  const logits = ops.linear(layerNorm(h, 'transformer.ln_f', cfg.bias), wte) // tied head: ln_f(h) · wteᵀ

  const balanceLoss = balances.length ? ops.mul(ops.sum(balances), 1 / cfg.n_layer) : graph.scalar(0, dtype)
  let ceLoss: Tensor | null = null
  let loss: Tensor | null = null
  if (targets) {
    const N = mulDims(B, T)
    ceLoss = ops.crossEntropy(ops.reshape(logits, [N, cfg.vocab_size]), ops.reshape(targets, [N]))
    const { weight } = auxLossWeight(cfg)
    loss = opts.training && balances.length && weight > 0 ? ops.add(ceLoss, ops.mul(balanceLoss, weight)) : ceLoss
  }
  let decoderTensors: DecoderTensors | null = null
  if (levelInputs) graph.output(DECODER_IO.logits, logits)
  if (decoder) {
    graph.output(DECODER_IO.logits, logits)
    const present = decoder.present.map((p, i) =>
      opts.cacheOutputs === 'appended'
        ? {
            key: graph.output(DECODER_IO.appendedKey(i), p.key, 'keys of the new positions [batch, kv heads, new, head dim]'),
            value: graph.output(DECODER_IO.appendedValue(i), p.value, 'values of the new positions'),
          }
        : {
            key: graph.output(DECODER_IO.presentKey(i), p.key, 'keys of the past and new positions [batch, kv heads, past + new, head dim]'),
            value: graph.output(DECODER_IO.presentValue(i), p.value, 'values of the past and new positions'),
          },
    )
    decoderTensors = { attentionMask: decoder.attentionMask, positionIds: decoder.positionIds, past: decoder.past, present }
  }
  return { idx, targets, logits, ceLoss, balanceLoss, loss, gates, chosen, decoder: decoderTensors }
}

/**
 * A decoder graph's inputs beside input_ids, and what every layer shares: the cache slots of the new
 * positions (P + t: causality is by slot, so left padding works) and the visibility mask built once.
 */
function decoderInputs(graph: Graph, cfg: GptConfig, idx: Tensor, dtype: 'float32' | 'float64' | 'float16') {
  const { batch: B, seq: T, past: P } = DECODER_IO.dims
  if (idx.shape[0] !== B || idx.shape[1] !== T)
    throw new GraphError(`buildGpt: a kvCache graph has symbolic batch and length; build it with batch '${B}' and seq '${T}' (got [${idx.shape.join(', ')}])`)
  const total = addDims(P, T) // the name ops.concat gives past ++ new
  const attentionMask = graph.input(DECODER_IO.attentionMask, 'int64', [B, total], '1 for real tokens, 0 for (left) padding, over past and new positions')
  const positionIds = graph.input(DECODER_IO.positionIds, 'int64', [B, T], 'position of each new token (0-based, excluding padding; < block_size)')
  const d = cfg.n_embd / cfg.n_head
  const heads = kvHeadsPerLayer(cfg)
  const past = [...Array(cfg.n_layer).keys()].map((i) => ({
    key: graph.input(DECODER_IO.pastKey(i), dtype, [B, heads, P, d], 'cached keys [batch, kv heads, past, head dim]'),
    value: graph.input(DECODER_IO.pastValue(i), dtype, [B, heads, P, d], 'cached values'),
  }))
  const pastLength = ops.sub(ops.dimOf(attentionMask, 1), ops.dimOf(idx, 1))
  const querySlots = ops.unsqueeze(ops.add(ops.range(ops.dimOf(idx, 1), T), pastLength), [0]) // [1, T]
  const keyValid = ops.greater(attentionMask, graph.scalar(0, 'int64'))
  const mask = visibilityMask(querySlots, keyValid, dtype)
  return { attentionMask, positionIds, past, querySlots, keyValid, mask, present: [] as { key: Tensor; value: Tensor }[] }
}

/**
 * The inputs of a decoder graph whose cache holds each token's chosen level only (cacheOutputs 'levels'):
 * attention_mask over the new positions, and per layer and level the cached heads with their validity.
 */
function levelDecoderInputs(graph: Graph, cfg: GptConfig, idx: Tensor, dtype: 'float32' | 'float64' | 'float16') {
  const { batch: B, seq: T } = DECODER_IO.dims
  if (idx.shape[0] !== B || idx.shape[1] !== T)
    throw new GraphError(`buildGpt: a kvCache graph has symbolic batch and length; build it with batch '${B}' and seq '${T}' (got [${idx.shape.join(', ')}])`)
  const attentionMask = graph.input(DECODER_IO.attentionMask, 'int64', [B, T], '1 for real new tokens, 0 for (left) padding')
  const positionIds = graph.input(DECODER_IO.positionIds, 'int64', [B, T], 'position of each new token (0-based, excluding padding; < block_size)')
  const d = cfg.n_embd / cfg.n_head
  const past = [...Array(cfg.n_layer).keys()].map((i) =>
    cfg.kv_levels!.map((G, j) => {
      const P = `past_levels_${i}_${j}`
      return {
        key: graph.input(DECODER_IO.pastLevelKey(i, j), dtype, [B, G, P, d], `layer ${i}'s cached keys of the tokens that chose level ${j} (${G} heads)`),
        value: graph.input(DECODER_IO.pastLevelValue(i, j), dtype, [B, G, P, d], `layer ${i}'s cached values at level ${j}`),
        valid: graph.input(DECODER_IO.pastLevelValid(i, j), 'bool', [B, P], 'true for a held entry, false for padding (rows hold different counts)'),
      }
    }),
  )
  const querySlots = ops.unsqueeze(ops.range(ops.dimOf(idx, 1), T), [0]) // [1, T]: among the new positions
  const keyValid = ops.greater(attentionMask, graph.scalar(0, 'int64'))
  return { attentionMask, positionIds, past, shared: { mask: visibilityMask(querySlots, keyValid, dtype), querySlots } }
}
