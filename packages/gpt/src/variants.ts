/**
 * The variant registry: one row per attention variant, giving everything the other packages need to know
 * about it (docs/variants.md defines the maths). Config validation, the model builder, export, decode,
 * routing statistics, the trainer's eval, the benches and the CLI read this table; adding a variant is its
 * builder plus one row (plus its reference fixture).
 */

import type { Tensor } from '@moas/tensor-core'
import type { GptConfig } from './config'
import { type GqeMode, gqe } from './gqe'
import type { BuildContext } from './layers'
import { type AttentionOutput, MOAS_SCHEMES, moas, moasTopKDense, plainScheme, staticMoas } from './moas'
import { levelCosts, moasKv } from './moasKv'
import { moasTopKRouted } from './routed'

/** Every variant's name, in the order help texts and sweeps list them. */
export const VARIANTS = ['mha', 'gqa', 'mqa', 'static-moas', 'moas', 'moas-topk', 'gqe', 'gqe-hard-only', 'gqe-no-renorm', 'gqe-no-shared', 'moas-kv'] as const
export type Variant = (typeof VARIANTS)[number]

/** The optional config keys; a row lists the ones its variant reads (the others are dropped). */
export const OPTIONAL_CONFIG_KEYS = [
  'n_kv_head',
  'moas_top_k',
  'gqe_top_k',
  'gqe_shared_kv',
  'router_hidden',
  'gate_dropout',
  'kv_levels',
  'kv_level_weights',
  'kv_budget',
  'kv_budget_warmup',
  'kv_budget_weight',
  'kv_route',
  'kv_route_shares',
] as const
export type OptionalConfigKey = (typeof OPTIONAL_CONFIG_KEYS)[number]

/** plain: one scheme; moas: MHA/GQA/MQA branches mixed; gqe: grouped query experts; kv: routed KV levels. */
export type VariantFamily = 'plain' | 'moas' | 'gqe' | 'kv'

/** One attention-core call of a layer: G groups of R query heads each on its own KV head, or (kvHead0) on KV head 0 only. */
export interface AttentionCall {
  G: number
  R: number
  kvHead0?: boolean
}

/** How a layer of the variant is added to a graph (x = ln_1(h); `routed`: inference's routed top-k path). */
export type AttentionBuilder = (x: Tensor, cfg: GptConfig, prefix: string, ctx: BuildContext, layer: number, routed: boolean) => AttentionOutput

export interface VariantSpec {
  family: VariantFamily
  /** One line for help texts. */
  summary: string
  /** The optional config keys this variant reads. */
  keys: readonly OptionalConfigKey[]
  build: AttentionBuilder
  /** KV heads cached per layer (every branch's, for MoAS). */
  kvHeads: (cfg: GptConfig) => number
  /** Which heads of a layer's past/present hold what (exported folders' config.json says it). */
  cacheLayout: (cfg: GptConfig) => string
  /** Query heads that attend per token and layer (the attention core's work). */
  queryHeads: (cfg: GptConfig) => number
  /**
   * Routed variants: what a choice means, and how many independent choices a token makes per layer
   * (GQE: one per group). The graph outputs `gates.{i}` / `chosen.{i}` (DECODER_IO) carry them.
   */
  routing: {
    labels: (cfg: GptConfig) => string[]
    groups: (cfg: GptConfig) => number
    /** What a position's counted choice is, in words (reports say it). */
    choice: string
  } | null
  /**
   * The attention-core calls one layer makes at prefill (benches time them alone); null when the calls are
   * data-dependent (moas-topk attends only the queries routed to each branch).
   */
  coreCalls: ((cfg: GptConfig) => AttentionCall[]) | null
  /** The variant it is measured against, or null (mha). */
  baseline: Variant | null
  /** An ablation of its baseline (sweeps over the main variants leave it out). */
  ablation?: boolean
  /** The PyTorch reference fixture of its default form (packages/gpt/test/fixtures/NAME.json). */
  fixture: string
  /** GQE ablations: which slots feed c_proj. */
  gqe?: GqeMode
  /** The config key weighting the layer losses in the training loss, when not `balance_weight` (moas-kv: its budget's). */
  lossWeightKey?: 'kv_budget_weight'
  /**
   * The mean KV bytes per token the variant aims at, as a fraction of what its cache tensors hold per token
   * (moas-kv: its budget); absent: the cache tensors are the bytes.
   */
  expectedKvFraction?: (cfg: GptConfig) => number | undefined
  /** Decoders can keep a cache of what each token wrote (buildGpt's cacheOutputs 'levels'). */
  levelCache?: boolean
  /** The same fraction as measured: from each layer's share of positions per routing choice. */
  measuredKvFraction?: (cfg: GptConfig, sharePerLayer: readonly (readonly number[])[]) => number
}

const G = (cfg: GptConfig) => cfg.n_kv_head!
/** moas-kv: the mean bytes per token, as a fraction of MHA's, of each layer's share of positions per level. */
const levelShareFraction = (cfg: GptConfig, share: readonly (readonly number[])[]): number => {
  const costs = levelCosts(cfg)
  return share.reduce((sum, layer) => sum + layer.reduce((a, s, i) => a + s * costs[i], 0), 0) / share.length
}
const plainCalls =
  (kv: (cfg: GptConfig) => number) =>
  (cfg: GptConfig): AttentionCall[] => [{ G: kv(cfg), R: cfg.n_head / kv(cfg) }]
const moasKvHeads = (cfg: GptConfig) => cfg.n_head + G(cfg) + 1
const moasLayout = (cfg: GptConfig) =>
  `per layer ${moasKvHeads(cfg)} heads: MHA branch 0..${cfg.n_head - 1}, GQA branch ${cfg.n_head}..${cfg.n_head + G(cfg) - 1}, MQA branch ${cfg.n_head + G(cfg)}`
/** Dense MoAS runs every branch on every token: the three branches' heads and core calls (MHA, GQA, MQA). */
const denseMoasHeads = (cfg: GptConfig) => MOAS_SCHEMES.length * cfg.n_head
const denseMoasCalls = (cfg: GptConfig): AttentionCall[] => [
  { G: cfg.n_head, R: 1 },
  { G: G(cfg), R: cfg.n_head / G(cfg) },
  { G: 1, R: cfg.n_head },
]
const moasRouting = { labels: () => MOAS_SCHEMES.map((s) => s.toUpperCase()), groups: () => 1, choice: 'the scheme with the highest gate' }

function plainRow(
  kv: (cfg: GptConfig) => number,
  summary: string,
  keys: readonly OptionalConfigKey[],
  baseline: Variant | null,
  fixture: string,
  scheme: (typeof MOAS_SCHEMES)[number],
): VariantSpec {
  return {
    family: 'plain',
    summary,
    keys,
    baseline,
    fixture,
    build: (x, cfg, prefix, ctx) => plainScheme(x, cfg, scheme, prefix, ctx),
    kvHeads: kv,
    cacheLayout: (cfg) => `per layer ${kv(cfg)} heads`,
    queryHeads: (cfg) => cfg.n_head,
    routing: null,
    coreCalls: plainCalls(kv),
  }
}

function moasRow(row: Pick<VariantSpec, 'summary' | 'keys' | 'build' | 'queryHeads' | 'routing' | 'coreCalls' | 'baseline' | 'fixture'>): VariantSpec {
  return { family: 'moas', kvHeads: moasKvHeads, cacheLayout: moasLayout, ...row }
}

function gqeRow(mode: GqeMode, summary: string, baseline: Variant, fixture: string, ablation = false): VariantSpec {
  const kvHeads = (cfg: GptConfig) => G(cfg) + (mode.shared && cfg.gqe_shared_kv === 'own' ? 1 : 0)
  return {
    family: 'gqe',
    summary,
    baseline,
    fixture,
    gqe: mode,
    ablation,
    keys: mode.shared ? ['n_kv_head', 'gqe_top_k', 'gqe_shared_kv'] : ['n_kv_head', 'gqe_top_k'],
    build: (x, cfg, prefix, ctx) => gqe(x, cfg, mode, prefix, ctx),
    kvHeads,
    cacheLayout: (cfg) =>
      !mode.shared
        ? `per layer ${G(cfg)} group heads`
        : cfg.gqe_shared_kv === 'own'
          ? `per layer ${G(cfg)} group heads, then the shared head's own K/V`
          : `per layer ${G(cfg)} group heads (the shared head reads head 0)`,
    queryHeads: (cfg) => cfg.gqe_top_k! * G(cfg) + (mode.shared ? 1 : 0),
    routing: {
      labels: (cfg) => Array.from({ length: cfg.n_head / G(cfg) }, (_, m) => `expert ${m}`),
      groups: G,
      choice: "group 0's first expert (every group's shares are below)",
    },
    // top-k of each group's experts in k slots per group on its KV head, plus the shared head
    coreCalls: (cfg) => [{ G: G(cfg), R: cfg.gqe_top_k! }, ...(mode.shared ? [{ G: 1, R: 1, kvHead0: cfg.gqe_shared_kv !== 'own' }] : [])],
  }
}

/** The registry. */
export const VARIANT_TABLE: Readonly<Record<Variant, VariantSpec>> = {
  mha: plainRow((cfg) => cfg.n_head, 'multi-head attention (one KV head per query head)', [], null, 'mha', 'mha'),
  gqa: plainRow(G, 'grouped-query attention (n_kv_head KV heads)', ['n_kv_head'], 'mha', 'gqa', 'gqa'),
  mqa: plainRow(() => 1, 'multi-query attention (one KV head)', [], 'mha', 'mqa', 'mqa'),
  'static-moas': moasRow({
    summary: 'MoAS without a router: the mean of the MHA, GQA and MQA branches',
    keys: ['n_kv_head'],
    baseline: 'mha',
    fixture: 'static-moas',
    build: (x, cfg, prefix, ctx) => staticMoas(x, cfg, prefix, ctx),
    queryHeads: denseMoasHeads,
    routing: null,
    coreCalls: denseMoasCalls,
  }),
  moas: moasRow({
    summary: 'MoAS: a per-token router mixes the MHA, GQA and MQA branches (soft)',
    keys: ['n_kv_head', 'router_hidden', 'gate_dropout'],
    baseline: 'mha',
    fixture: 'moas',
    build: (x, cfg, prefix, ctx) => moas(x, cfg, prefix, ctx),
    queryHeads: denseMoasHeads,
    routing: moasRouting,
    coreCalls: denseMoasCalls,
  }),
  'moas-topk': moasRow({
    summary: 'MoAS with top-k routing: each token runs its k chosen branches',
    keys: ['n_kv_head', 'moas_top_k', 'router_hidden'],
    baseline: 'moas',
    fixture: 'moas-topk1',
    build: (x, cfg, prefix, ctx, layer, routed) =>
      routed ? moasTopKRouted(x, cfg, prefix, layer, ctx.cache, ctx.routedQueryBlock) : moasTopKDense(x, cfg, prefix, ctx),
    queryHeads: (cfg) => cfg.moas_top_k! * cfg.n_head,
    routing: { ...moasRouting, choice: 'the branch ranked first by the top-k router' },
    coreCalls: null,
  }),
  gqe: gqeRow(
    { weightedSlot: true, scaleByGate: false, shared: true },
    'grouped query experts: top-k query heads per KV group, a weighted slot and a shared head',
    'gqa',
    'gqe',
  ),
  'gqe-hard-only': gqeRow(
    { weightedSlot: false, scaleByGate: false, shared: true },
    'GQE ablation: hard slots only (no weighted slot)',
    'gqe',
    'gqe-hard-only',
    true,
  ),
  'gqe-no-renorm': gqeRow(
    { weightedSlot: false, scaleByGate: true, shared: true },
    'GQE ablation: hard slots times their raw gates (weighted concat)',
    'gqe',
    'gqe-no-renorm',
    true,
  ),
  'moas-kv': {
    family: 'kv',
    summary: 'routed KV levels: per token a router picks how many KV heads it writes to the cache, under a byte budget',
    keys: ['n_kv_head', 'router_hidden', 'kv_levels', 'kv_level_weights', 'kv_budget', 'kv_budget_warmup', 'kv_budget_weight', 'kv_route', 'kv_route_shares'],
    build: (x, cfg, prefix, ctx, layer) => moasKv(x, cfg, prefix, ctx, layer),
    kvHeads: (cfg) => cfg.n_head,
    cacheLayout: (cfg) =>
      `per layer ${cfg.n_head} heads: each token's chosen level (${cfg.kv_levels!.join(' / ')} heads) repeated over the query heads each of its heads covers`,
    queryHeads: (cfg) => cfg.n_head,
    routing: {
      labels: (cfg) => cfg.kv_levels!.map((G) => `${G} KV head${G === 1 ? '' : 's'}`),
      groups: () => 1,
      choice: 'the level of KV heads the token wrote',
    },
    coreCalls: (cfg) => [{ G: cfg.n_head, R: 1 }],
    baseline: 'mha',
    fixture: 'moas-kv',
    lossWeightKey: 'kv_budget_weight',
    // a control's levels are fed: random ones at their shares; the rule's depend on the text (measured only)
    expectedKvFraction: (cfg) =>
      cfg.kv_route === 'rule' ? undefined : cfg.kv_route === 'random' ? levelShareFraction(cfg, cfg.kv_route_shares!) : cfg.kv_budget!,
    levelCache: true,
    measuredKvFraction: (cfg, share) => levelShareFraction(cfg, share),
  },
  'gqe-no-shared': gqeRow({ weightedSlot: true, scaleByGate: false, shared: false }, 'GQE ablation: no shared head', 'gqe', 'gqe-no-shared', true),
}

/** The main variants: every variant but the ablations. */
export const MAIN_VARIANTS: readonly Variant[] = VARIANTS.filter((v) => !VARIANT_TABLE[v].ablation)

/** The registry row of `variant` (a Variant: resolveConfig has checked the name). */
export const variantSpec = (variant: Variant): VariantSpec => VARIANT_TABLE[variant]

export const isMoas = (v: Variant) => VARIANT_TABLE[v].family === 'moas'
export const isGqe = (v: Variant) => VARIANT_TABLE[v].family === 'gqe'
export const isRouted = (v: Variant) => VARIANT_TABLE[v].routing !== null

/** The config key weighting the variant's layer losses in the training loss, and its value. */
export function auxLossWeight(cfg: GptConfig): { key: 'balance_weight' | 'kv_budget_weight'; weight: number } {
  const key = VARIANT_TABLE[cfg.attention].lossWeightKey ?? 'balance_weight'
  return { key, weight: cfg[key]! }
}

/** KV heads cached per layer (docs/variants.md, "KV cache"). */
export const kvHeadsPerLayer = (cfg: GptConfig): number => VARIANT_TABLE[cfg.attention].kvHeads(cfg)

/** Query heads that attend per token and layer; at 16 q / 8 kv heads, top-1: gqe 9. */
export const queryHeadsPerToken = (cfg: GptConfig): number => VARIANT_TABLE[cfg.attention].queryHeads(cfg)

/** Which heads of each layer's past/present hold what (the order LayerKvCache hands them out). */
export const kvCacheLayout = (cfg: GptConfig): string => VARIANT_TABLE[cfg.attention].cacheLayout(cfg)

/** What a routed variant's choices mean (MHA / GQA / MQA, or GQE's experts); [] for unrouted variants. */
export const choiceLabels = (cfg: GptConfig): string[] => VARIANT_TABLE[cfg.attention].routing?.labels(cfg) ?? []

/** Independent choices per token and layer (GQE: one per group); 0 for unrouted variants. */
export const routingGroups = (cfg: GptConfig): number => VARIANT_TABLE[cfg.attention].routing?.groups(cfg) ?? 0

/** Slots that feed a GQE layer's c_proj: k·G hard slots, + the weighted-sum slot, + the shared head. */
export function gqeSlots(cfg: GptConfig): number {
  const mode = VARIANT_TABLE[cfg.attention].gqe
  if (!mode) throw new Error(`gqeSlots: '${cfg.attention}' is not a GQE variant`)
  return cfg.gqe_top_k! * cfg.n_kv_head! + Number(mode.weightedSlot) + Number(mode.shared)
}
