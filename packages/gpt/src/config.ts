/**
 * The model config: snake_case keys exactly as users type them and as config.json stores them (the
 * PyTorch reference's GPTConfig uses the same names). `resolveConfig` fills defaults from a preset and
 * the variant, validates everything and returns a config holding only the keys its variant uses.
 */
import { MOAS_SCHEMES } from './moas'
import { isGqe, OPTIONAL_CONFIG_KEYS, type OptionalConfigKey, VARIANT_TABLE, VARIANTS, type Variant } from './variants'

export const SHARED_KV_SOURCES = ['kv0', 'own'] as const
export type SharedKvSource = (typeof SHARED_KV_SOURCES)[number]

/** moas-kv: coarser KV levels as means of the finest level's heads (no new weights), or their own projections. */
export const KV_LEVEL_WEIGHTS = ['shared', 'own'] as const
export type KvLevelWeights = (typeof KV_LEVEL_WEIGHTS)[number]

/**
 * moas-kv: who picks each token's level. 'router' (the default, left out of config.json) is the variant;
 * 'random' and 'rule' are the study's controls, whose levels the trainer feeds (kv_route_levels): drawn per
 * token from kv_route_shares, or by character class (docs/variants.md, "Controls"). Controls have no decoder.
 */
export const KV_ROUTES = ['router', 'random', 'rule'] as const
export type KvRoute = (typeof KV_ROUTES)[number]

export interface GptConfig {
  vocab_size: number
  block_size: number
  n_layer: number
  n_head: number
  n_embd: number
  /** Every Linear and LayerNorm has a bias (the MoAS router never has one). */
  bias: boolean
  dropout: number
  attention: Variant
  /** KV heads of `gqa`, of the GQA branch of the MoAS variants, and the group count G of GQE. */
  n_kv_head?: number
  /** Branches per token for `moas-topk` (1..3). */
  moas_top_k?: number
  /** Experts per group for the GQE variants (1..M, M = n_head / n_kv_head). */
  gqe_top_k?: number
  /** Key/value source of GQE's shared head: KV head 0, or its own K/V projections. */
  gqe_shared_kv?: SharedKvSource
  /** Hidden width of the MoAS router (default n_embd / 4). */
  router_hidden?: number
  /** Dropout on the MoAS gates in training (default `dropout`). */
  gate_dropout?: number
  /** moas-kv: KV heads per level, finest first (default [n_head, n_kv_head, 1]); each divides n_head. */
  kv_levels?: number[]
  /** moas-kv: coarser levels derived from the finest ('shared', default) or projected on their own ('own'). */
  kv_level_weights?: KvLevelWeights
  /** moas-kv: target mean KV bytes per token as a fraction of MHA's, 0 < ρ ≤ 1 (default 0.5). */
  kv_budget?: number
  /** moas-kv: updates over which the budget's target anneals linearly from 1 to kv_budget (default 100). */
  kv_budget_warmup?: number
  /** moas-kv: weight of the budget loss in the training loss (default 1). */
  kv_budget_weight?: number
  /** moas-kv: who picks each token's level (KV_ROUTES); absent means 'router'. */
  kv_route?: Exclude<KvRoute, 'router'>
  /** moas-kv with kv_route 'random': per layer, each level's share of positions (finest first; each row sums to 1). */
  kv_route_shares?: number[][]
  /** Weight of the router balance loss in the training loss. */
  balance_weight: number
}

/** Every config key, in the order config.json stores them: the sizes, the variant's optional keys, the loss weight. */
export const CONFIG_KEYS = [
  ...(['vocab_size', 'block_size', 'n_layer', 'n_head', 'n_embd', 'bias', 'dropout', 'attention'] as const),
  ...OPTIONAL_CONFIG_KEYS,
  'balance_weight',
] as const
type ConfigKey = (typeof CONFIG_KEYS)[number]

/** A config a user wrote: any subset of the keys (a preset fills the rest). */
export type GptConfigInput = Partial<Omit<GptConfig, 'attention'>> & { attention?: string }

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Whether `v` reads the key (the registry row lists the optional keys it reads). */
function usesKey(v: Variant, key: ConfigKey): boolean {
  return !(OPTIONAL_CONFIG_KEYS as readonly string[]).includes(key) || VARIANT_TABLE[v].keys.includes(key as OptionalConfigKey)
}

// ---------------------------------------------------------------- presets

export type PresetName = 'paper' | 'smoke' | 'gqe-main'

/**
 * `paper`: the MoAS paper's model (seed-facts.md). The vocabulary comes from the data (283 characters
 * for WikiText-2), so presets leave `vocab_size` to the caller. `n_kv_head` 2 is the GQA branch of the
 * paper; GQE variants default to n_head / 2 groups instead (M = 2 experts per group, as GQE's main
 * setting 16 q / 8 kv). `gate_dropout` follows `dropout` unless set.
 * `smoke`: tiny, trains in seconds on a CPU.
 * `gqe-main`: the GQE paper's main setting (16 query heads in 8 KV groups, 1024 wide), as the benches
 * measure it (2 layers; block_size 2048, which a bench raises for longer contexts).
 */
export const PRESETS: Readonly<Record<PresetName, Readonly<Omit<GptConfigInput, 'vocab_size'>>>> = {
  paper: { block_size: 256, n_layer: 4, n_head: 6, n_embd: 384, bias: false, dropout: 0.1, attention: 'mha', n_kv_head: 2, balance_weight: 0.01 },
  smoke: { block_size: 64, n_layer: 2, n_head: 4, n_embd: 64, bias: false, dropout: 0.0, attention: 'mha', n_kv_head: 2, balance_weight: 0.01 },
  'gqe-main': { block_size: 2048, n_layer: 2, n_head: 16, n_embd: 1024, bias: false, dropout: 0.0, attention: 'gqa', n_kv_head: 8, balance_weight: 0.01 },
}

// ---------------------------------------------------------------- resolve and validate

/**
 * Fill defaults (preset, then per-variant defaults) and validate. Throws ConfigError naming the key, the
 * problem and the fix. Keys the variant does not use are accepted (so one base config can be reused
 * across variants) and left out of the result.
 */
export function resolveConfig(input: GptConfigInput | Record<string, unknown>, preset?: PresetName | string): GptConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input))
    throw new ConfigError(`the model config must be an object of keys such as ${CONFIG_KEYS.slice(0, 5).join(', ')}`)
  for (const key of Object.keys(input)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(key)) {
      const hint = didYouMean(key, CONFIG_KEYS)
      throw new ConfigError(`unknown config key '${key}'${hint}. Known keys: ${CONFIG_KEYS.join(', ')}`)
    }
  }
  let base: GptConfigInput = {}
  if (preset !== undefined) {
    if (!(preset in PRESETS))
      throw new ConfigError(`unknown preset '${preset}'${didYouMean(preset, Object.keys(PRESETS))}. Presets: ${Object.keys(PRESETS).join(', ')}`)
    base = PRESETS[preset as PresetName]
  }
  const given = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)) as Record<string, unknown>
  const raw: Record<string, unknown> = { ...base, ...given }

  const attention = checkVariant(raw.attention ?? 'mha')
  const sizes = ['vocab_size', 'block_size', 'n_layer', 'n_head', 'n_embd'] as const
  for (const key of sizes) {
    if (raw[key] === undefined) {
      const fix =
        key === 'vocab_size'
          ? "set it to the tokenizer's vocabulary size (283 for the paper's WikiText-2 characters)"
          : `set it or pass a preset (${Object.keys(PRESETS).join(', ')})`
      throw new ConfigError(`${key} is required: ${fix}`)
    }
    positiveInt(key, raw[key])
  }
  const cfg: GptConfig = {
    vocab_size: raw.vocab_size as number,
    block_size: raw.block_size as number,
    n_layer: raw.n_layer as number,
    n_head: raw.n_head as number,
    n_embd: raw.n_embd as number,
    bias: bool('bias', raw.bias ?? false),
    dropout: probability('dropout', raw.dropout ?? 0),
    attention,
    balance_weight: nonNegative('balance_weight', raw.balance_weight ?? 0.01),
  }
  const { n_embd: C, n_head: H } = cfg
  if (C % H !== 0) throw new ConfigError(`n_embd (${C}) must be divisible by n_head (${H}); head size = n_embd / n_head. e.g. n_head ${divisorsNear(C, H)}`)

  // Validate every optional key the user gave, even when this variant drops it: a typo'd value is a bug.
  if (raw.n_kv_head !== undefined) positiveInt('n_kv_head', raw.n_kv_head)
  if (raw.moas_top_k !== undefined) positiveInt('moas_top_k', raw.moas_top_k)
  if (raw.gqe_top_k !== undefined) positiveInt('gqe_top_k', raw.gqe_top_k)
  if (raw.router_hidden !== undefined) positiveInt('router_hidden', raw.router_hidden)
  if (raw.gate_dropout !== undefined) probability('gate_dropout', raw.gate_dropout)
  if (raw.gqe_shared_kv !== undefined) sharedKv(raw.gqe_shared_kv)
  if (raw.kv_level_weights !== undefined) levelWeights(raw.kv_level_weights)
  if (raw.kv_budget !== undefined) budget(raw.kv_budget)
  if (raw.kv_budget_warmup !== undefined) nonNegativeInt('kv_budget_warmup', raw.kv_budget_warmup)
  if (raw.kv_budget_weight !== undefined) nonNegative('kv_budget_weight', raw.kv_budget_weight)
  if (raw.kv_route !== undefined) kvRoute(raw.kv_route)

  const use = (k: ConfigKey) => usesKey(attention, k)
  if (use('n_kv_head')) {
    // GQE defaults to n_head / 2 groups (M = 2); the preset's n_kv_head is the GQA branch's and applies
    // to GQE only when the user set it explicitly.
    const explicit = given.n_kv_head as number | undefined
    const G = explicit ?? (isGqe(attention) ? defaultGqeGroups(H) : ((base.n_kv_head as number | undefined) ?? defaultKvHeads(H)))
    if (H % G !== 0)
      throw new ConfigError(
        `n_head (${H}) must be divisible by n_kv_head (${G}): each KV head serves n_head / n_kv_head query heads. Valid n_kv_head: ${divisors(H).join(', ')}`,
      )
    cfg.n_kv_head = G
  }
  if (use('moas_top_k')) {
    const k = (raw.moas_top_k as number | undefined) ?? 1
    if (k > MOAS_SCHEMES.length) throw new ConfigError(`moas_top_k (${k}) must be between 1 and ${MOAS_SCHEMES.length}, the number of schemes (mha, gqa, mqa)`)
    cfg.moas_top_k = k
  }
  if (use('gqe_top_k')) {
    const M = H / cfg.n_kv_head!
    const k = (raw.gqe_top_k as number | undefined) ?? 1
    if (k > M)
      throw new ConfigError(`gqe_top_k (${k}) must be between 1 and M = n_head / n_kv_head = ${H} / ${cfg.n_kv_head} = ${M}, the query-head experts per group`)
    cfg.gqe_top_k = k
  }
  if (use('gqe_shared_kv')) cfg.gqe_shared_kv = sharedKv(raw.gqe_shared_kv ?? 'kv0')
  if (use('router_hidden')) {
    const hidden = (raw.router_hidden as number | undefined) ?? Math.floor(C / 4)
    if (hidden < 1) throw new ConfigError(`router_hidden defaults to n_embd / 4, which is 0 for n_embd ${C}; set router_hidden to a positive integer`)
    cfg.router_hidden = hidden
  }
  if (use('gate_dropout')) cfg.gate_dropout = (raw.gate_dropout as number | undefined) ?? cfg.dropout
  if (use('kv_levels')) {
    const levels = kvLevels(raw.kv_levels ?? [...new Set([H, cfg.n_kv_head!, 1])], H)
    cfg.kv_levels = levels
    cfg.kv_level_weights = levelWeights(raw.kv_level_weights ?? 'shared')
    const rho = budget(raw.kv_budget ?? 0.5)
    const cheapest = levels[levels.length - 1] / H
    if (rho < cheapest)
      throw new ConfigError(
        `kv_budget ${rho} is below what the cheapest level costs (${levels[levels.length - 1]} of ${H} heads = ${+cheapest.toFixed(4)} of MHA's bytes); raise kv_budget to at least ${+cheapest.toFixed(4)} or add a coarser level`,
      )
    cfg.kv_budget = rho
    cfg.kv_budget_warmup = (raw.kv_budget_warmup as number | undefined) ?? 100
    cfg.kv_budget_weight = (raw.kv_budget_weight as number | undefined) ?? 1
    const route = kvRoute(raw.kv_route ?? 'router')
    if (route !== 'router') {
      cfg.kv_route = route
      delete cfg.router_hidden // a control has no router
    }
    if (route === 'random') cfg.kv_route_shares = routeShares(raw.kv_route_shares, levels, cfg.n_layer)
    else if (raw.kv_route_shares !== undefined)
      throw new ConfigError(`kv_route_shares is the level mix of kv_route "random" (got kv_route "${route}"); remove it or set kv_route to "random"`)
    if (route === 'rule' && levels.length !== 3)
      throw new ConfigError(
        `kv_route "rule" sends spaces and punctuation to the coarsest level, a word's first letter to the finest and other characters to the middle one, so it needs three kv_levels; got [${levels.join(', ')}]`,
      )
  }
  return ordered(cfg)
}

/** The config with keys in CONFIG_KEYS order, so config.json files read the same everywhere. */
function ordered(cfg: GptConfig): GptConfig {
  const out: Record<string, unknown> = {}
  for (const k of CONFIG_KEYS) if (cfg[k] !== undefined) out[k] = cfg[k]
  return out as unknown as GptConfig
}

function defaultKvHeads(H: number): number {
  return H % 2 === 0 ? 2 : 1
}

function defaultGqeGroups(H: number): number {
  if (H % 2 !== 0 || H < 2)
    throw new ConfigError(
      `GQE needs n_kv_head (the group count G); its default n_head / 2 needs an even n_head, got ${H}. Set n_kv_head to a divisor of ${H}: ${divisors(H).join(', ')}`,
    )
  return H / 2
}

function checkVariant(v: unknown): Variant {
  if (typeof v !== 'string') throw new ConfigError(`attention must be a variant name (${VARIANTS.join(', ')}), got ${JSON.stringify(v)}`)
  if (!(VARIANTS as readonly string[]).includes(v))
    throw new ConfigError(`unknown attention variant '${v}'${didYouMean(v, VARIANTS)}. Variants: ${VARIANTS.join(', ')}`)
  return v as Variant
}

function kvRoute(v: unknown): KvRoute {
  if (typeof v !== 'string' || !(KV_ROUTES as readonly string[]).includes(v))
    throw new ConfigError(
      `kv_route must be "router" (the learned router, the variant itself), "random" (levels drawn per token with kv_route_shares) or "rule" (levels by character class), got ${JSON.stringify(v)}${typeof v === 'string' ? didYouMean(v, KV_ROUTES) : ''}`,
    )
  return v as KvRoute
}

/** kv_route_shares as one row per layer: one list for every layer, or a list per layer; each row sums to 1. */
function routeShares(v: unknown, levels: readonly number[], nLayer: number): number[][] {
  const L = levels.length
  const example = `[${levels.map(() => (1 / L).toFixed(2)).join(', ')}]`
  if (v === undefined)
    throw new ConfigError(`kv_route "random" draws each token's level from kv_route_shares: set it to each level's share, finest first, e.g. ${example}`)
  const isRow = (r: unknown): r is number[] => Array.isArray(r) && r.every((x) => typeof x === 'number' && Number.isFinite(x) && x >= 0)
  const rows = isRow(v) ? Array.from({ length: nLayer }, () => [...v]) : v
  if (!Array.isArray(rows) || rows.length !== nLayer || !rows.every(isRow))
    throw new ConfigError(
      `kv_route_shares must be a list of ${L} non-negative shares (one per level, finest first), or ${nLayer} such lists (one per layer); e.g. ${example}; got ${JSON.stringify(v)}`,
    )
  rows.forEach((r, i) => {
    const sum = r.reduce((a, b) => a + b, 0)
    if (r.length !== L || Math.abs(sum - 1) > 1e-6)
      throw new ConfigError(`kv_route_shares row ${i} must hold ${L} shares (one per level of [${levels.join(', ')}]) summing to 1, got [${r.join(', ')}]`)
  })
  return rows
}

function sharedKv(v: unknown): SharedKvSource {
  if (typeof v !== 'string' || !(SHARED_KV_SOURCES as readonly string[]).includes(v))
    throw new ConfigError(
      `gqe_shared_kv must be "kv0" (the shared head uses KV head 0, no extra KV cache) or "own" (its own K/V projections), got ${JSON.stringify(v)}${typeof v === 'string' ? didYouMean(v, SHARED_KV_SOURCES) : ''}`,
    )
  return v as SharedKvSource
}

function kvLevels(v: unknown, H: number): number[] {
  const example = [
    ...new Set([
      H,
      ...divisors(H)
        .filter((d) => d < H)
        .slice(-1),
      1,
    ]),
  ].join(', ')
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 1))
    throw new ConfigError(`kv_levels must be a list of KV head counts, finest first, e.g. [${example}]; got ${JSON.stringify(v)}`)
  if (v[0] !== H)
    throw new ConfigError(
      `kv_levels must start with the full n_head (${H}), the level every coarser one is derived from; got [${v.join(', ')}], e.g. [${example}]`,
    )
  if (v.length < 2) throw new ConfigError(`kv_levels needs at least two levels for the router to choose from; got [${v.join(', ')}], e.g. [${example}]`)
  for (let i = 1; i < v.length; i++)
    if (v[i] >= v[i - 1]) throw new ConfigError(`kv_levels must be strictly decreasing (finest first); got [${v.join(', ')}], e.g. [${example}]`)
  const bad = v.filter((x) => H % x !== 0)
  if (bad.length)
    throw new ConfigError(
      `kv_levels: ${bad.join(', ')} ${bad.length > 1 ? 'do' : 'does'} not divide n_head (${H}); each level's head covers n_head / level query heads. Valid levels: ${divisors(H).join(', ')}`,
    )
  return [...v]
}

function levelWeights(v: unknown): KvLevelWeights {
  if (typeof v !== 'string' || !(KV_LEVEL_WEIGHTS as readonly string[]).includes(v))
    throw new ConfigError(
      `kv_level_weights must be "shared" (coarser levels are means of the finest level's heads, no new weights) or "own" (each level has its own K/V projections), got ${JSON.stringify(v)}`,
    )
  return v as KvLevelWeights
}

function budget(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 1)
    throw new ConfigError(`kv_budget must be a fraction of MHA's KV bytes per token with 0 < kv_budget <= 1 (e.g. 0.5), got ${JSON.stringify(v)}`)
  return v
}

function nonNegativeInt(key: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new ConfigError(`${key} must be a whole number >= 0, got ${JSON.stringify(v)}`)
  return v
}

function positiveInt(key: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new ConfigError(`${key} must be a positive integer, got ${JSON.stringify(v)}`)
  return v
}

function probability(key: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v >= 1)
    throw new ConfigError(`${key} must be a number with 0 <= ${key} < 1, got ${JSON.stringify(v)}`)
  return v
}

function nonNegative(key: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new ConfigError(`${key} must be a finite number >= 0, got ${JSON.stringify(v)}`)
  return v
}

function bool(key: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new ConfigError(`${key} must be true or false, got ${JSON.stringify(v)}`)
  return v
}

/** The divisors of n in increasing order (trial division up to √n: n may be huge in a bad config). */
function divisors(n: number): number[] {
  const small: number[] = []
  const large: number[] = []
  for (let d = 1; d * d <= n; d++) {
    if (n % d !== 0) continue
    small.push(d)
    if (d * d !== n) large.unshift(n / d)
  }
  return [...small, ...large]
}

/** The two divisors of C closest to H, for the n_embd / n_head hint. */
function divisorsNear(C: number, H: number): string {
  const ds = divisors(C)
    .sort((a, b) => Math.abs(a - H) - Math.abs(b - H) || a - b)
    .slice(0, 2)
  return ds.sort((a, b) => a - b).join(' or ')
}

// ---------------------------------------------------------------- "did you mean"

export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]
    prev[0] = i
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1))
      diag = up
    }
  }
  return prev[b.length]
}

/** ` (did you mean 'x'?)` for the closest candidate within a third of the word's length, else ''. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const norm = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '')
  let best = ''
  let bestD = Infinity
  for (const c of candidates) {
    // camelCase / kebab-case spellings of a snake_case key count as exact matches
    const d = norm(c) === norm(word) ? 0 : editDistance(word.toLowerCase(), c.toLowerCase())
    if (d < bestD) [best, bestD] = [c, d]
  }
  return bestD <= Math.max(2, Math.ceil(word.length / 3)) ? ` (did you mean '${best}'?)` : ''
}
