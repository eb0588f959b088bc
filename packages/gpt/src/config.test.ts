import { describe, expect, it } from 'vitest'
import { ConfigError, didYouMean, PRESETS, resolveConfig } from './config'
import { fixtureNames, loadFixture } from './reference-fixtures'
import { queryHeadsPerToken, VARIANTS } from './variants'

const base = { vocab_size: 11, block_size: 8, n_layer: 2, n_head: 4, n_embd: 8 }
const err = (input: Record<string, unknown>, preset?: string) => {
  try {
    resolveConfig(input, preset)
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError)
    return (e as Error).message
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(input)}`)
}

describe('resolveConfig', () => {
  it('resolves every fixture config to itself (keys a variant does not use are dropped)', () => {
    for (const name of fixtureNames()) {
      const { config } = loadFixture(name)
      const expected = { ...config }
      if (config.attention === 'gqe-no-shared') delete expected.gqe_shared_kv // no shared head, nothing to configure
      expect(resolveConfig(config), name).toEqual(expected)
      expect(Object.keys(resolveConfig(config)), `${name}: key order`).toEqual(Object.keys(expected))
    }
  })

  it('the paper preset is the paper model; vocab comes from the data', () => {
    const mha = resolveConfig({ vocab_size: 283 }, 'paper')
    expect(mha).toEqual({
      vocab_size: 283,
      block_size: 256,
      n_layer: 4,
      n_head: 6,
      n_embd: 384,
      bias: false,
      dropout: 0.1,
      attention: 'mha',
      balance_weight: 0.01,
    })
    expect(resolveConfig({ vocab_size: 283, attention: 'moas' }, 'paper')).toMatchObject({
      n_kv_head: 2,
      router_hidden: 96,
      gate_dropout: 0.1,
      balance_weight: 0.01,
    })
    expect(resolveConfig({ vocab_size: 283, attention: 'gqa' }, 'paper').n_kv_head).toBe(2)
    expect(resolveConfig({ vocab_size: 283, attention: 'moas-topk' }, 'paper')).toMatchObject({ n_kv_head: 2, moas_top_k: 1, router_hidden: 96 })
    // GQE defaults to n_head / 2 groups (M = 2 experts per group), unless n_kv_head is given
    expect(resolveConfig({ vocab_size: 283, attention: 'gqe' }, 'paper')).toMatchObject({ n_kv_head: 3, gqe_top_k: 1, gqe_shared_kv: 'kv0' })
    expect(resolveConfig({ vocab_size: 283, attention: 'gqe', n_kv_head: 2 }, 'paper').n_kv_head).toBe(2)
    expect(resolveConfig({ vocab_size: 283, dropout: 0.2, attention: 'moas' }, 'paper').gate_dropout).toBe(0.2)
    expect(err({}, 'paper')).toMatch(/vocab_size is required: set it to the tokenizer's vocabulary size/)
  })

  it('every variant resolves with both presets', () => {
    for (const preset of Object.keys(PRESETS))
      for (const attention of VARIANTS) expect(resolveConfig({ vocab_size: 50, attention }, preset).attention).toBe(attention)
  })

  it('rejects bad configs with messages that name the problem and the fix', () => {
    expect(err({ ...base, n_embd: 10 })).toBe('n_embd (10) must be divisible by n_head (4); head size = n_embd / n_head. e.g. n_head 2 or 5')
    expect(err({ ...base, attention: 'gqa', n_kv_head: 3 })).toBe(
      'n_head (4) must be divisible by n_kv_head (3): each KV head serves n_head / n_kv_head query heads. Valid n_kv_head: 1, 2, 4',
    )
    expect(err({ ...base, attention: 'gqe', n_kv_head: 2, gqe_top_k: 3 })).toBe(
      'gqe_top_k (3) must be between 1 and M = n_head / n_kv_head = 4 / 2 = 2, the query-head experts per group',
    )
    expect(err({ ...base, attention: 'gqe', gqe_top_k: 0 })).toBe('gqe_top_k must be a positive integer, got 0')
    expect(err({ ...base, attention: 'moas-topk', moas_top_k: 4 })).toBe('moas_top_k (4) must be between 1 and 3, the number of schemes (mha, gqa, mqa)')
    expect(err({ ...base, n_layer: 0 })).toBe('n_layer must be a positive integer, got 0')
    expect(err({ ...base, block_size: 2.5 })).toBe('block_size must be a positive integer, got 2.5')
    expect(err({ ...base, n_head: '4' })).toBe('n_head must be a positive integer, got "4"')
    expect(err({ ...base, dropout: 1 })).toBe('dropout must be a number with 0 <= dropout < 1, got 1')
    expect(err({ ...base, dropout: -0.1 })).toBe('dropout must be a number with 0 <= dropout < 1, got -0.1')
    expect(err({ ...base, attention: 'moas', gate_dropout: 1.5 })).toBe('gate_dropout must be a number with 0 <= gate_dropout < 1, got 1.5')
    expect(err({ ...base, balance_weight: -1 })).toBe('balance_weight must be a finite number >= 0, got -1')
    expect(err({ ...base, bias: 'no' })).toBe('bias must be true or false, got "no"')
    expect(err({ ...base, attention: 'moas', router_hidden: 0 })).toBe('router_hidden must be a positive integer, got 0')
    expect(err({ ...base, n_embd: 3, n_head: 1, attention: 'moas' })).toBe(
      'router_hidden defaults to n_embd / 4, which is 0 for n_embd 3; set router_hidden to a positive integer',
    )
    expect(err({ ...base, n_head: 3, n_embd: 9, attention: 'gqe' })).toBe(
      'GQE needs n_kv_head (the group count G); its default n_head / 2 needs an even n_head, got 3. Set n_kv_head to a divisor of 3: 1, 3',
    )
    expect(err({ ...base, attention: 'gqe', gqe_shared_kv: 'kv1' })).toBe(
      'gqe_shared_kv must be "kv0" (the shared head uses KV head 0, no extra KV cache) or "own" (its own K/V projections), got "kv1" (did you mean \'kv0\'?)',
    )
    expect(err({ ...base, block_size: undefined })).toBe('block_size is required: set it or pass a preset (paper, smoke, gqe-main)')
    expect(err([] as any)).toMatch(/the model config must be an object/)
  })

  it('moas-kv: levels default to [n_head, n_kv_head, 1]; bad budgets and levels are refused with the fix', () => {
    expect(resolveConfig({ vocab_size: 283, attention: 'moas-kv' }, 'paper')).toMatchObject({
      kv_levels: [6, 2, 1],
      kv_level_weights: 'shared',
      kv_budget: 0.5,
      kv_budget_warmup: 100,
      kv_budget_weight: 1,
      router_hidden: 96,
    })
    const kv = { ...base, attention: 'moas-kv' }
    expect(err({ ...kv, kv_budget: 0 })).toBe("kv_budget must be a fraction of MHA's KV bytes per token with 0 < kv_budget <= 1 (e.g. 0.5), got 0")
    expect(err({ ...kv, kv_budget: 1.5 })).toBe("kv_budget must be a fraction of MHA's KV bytes per token with 0 < kv_budget <= 1 (e.g. 0.5), got 1.5")
    expect(err({ ...kv, kv_budget: 0.2 })).toBe(
      "kv_budget 0.2 is below what the cheapest level costs (1 of 4 heads = 0.25 of MHA's bytes); raise kv_budget to at least 0.25 or add a coarser level",
    )
    expect(err({ ...kv, kv_levels: [4, 3, 1] })).toBe(
      "kv_levels: 3 does not divide n_head (4); each level's head covers n_head / level query heads. Valid levels: 1, 2, 4",
    )
    expect(err({ ...kv, kv_levels: [4, 1, 2] })).toBe('kv_levels must be strictly decreasing (finest first); got [4, 1, 2], e.g. [4, 2, 1]')
    expect(err({ ...kv, kv_levels: [2, 1] })).toBe(
      'kv_levels must start with the full n_head (4), the level every coarser one is derived from; got [2, 1], e.g. [4, 2, 1]',
    )
    expect(err({ ...kv, kv_levels: [4] })).toBe('kv_levels needs at least two levels for the router to choose from; got [4], e.g. [4, 2, 1]')
    expect(err({ ...kv, kv_levels: '4,2,1' })).toBe('kv_levels must be a list of KV head counts, finest first, e.g. [4, 2, 1]; got "4,2,1"')
    expect(err({ ...kv, kv_level_weights: 'mean' })).toBe(
      'kv_level_weights must be "shared" (coarser levels are means of the finest level\'s heads, no new weights) or "own" (each level has its own K/V projections), got "mean"',
    )
    expect(err({ ...kv, kv_budget_warmup: -1 })).toBe('kv_budget_warmup must be a whole number >= 0, got -1')
    // checked even for a variant that drops it
    expect(err({ ...base, attention: 'mha', kv_budget: 2 })).toMatch(/^kv_budget must be a fraction/)
    expect(resolveConfig({ ...base, attention: 'mha', kv_budget: 0.5 })).not.toHaveProperty('kv_budget')
  })

  it("moas-kv controls: kv_route random takes one mix for every layer or one per layer; rule needs three levels; the router's default stays out of config.json", () => {
    const kv = { ...base, attention: 'moas-kv', n_layer: 2 }
    expect(resolveConfig(kv)).not.toHaveProperty('kv_route')
    expect(resolveConfig({ ...kv, kv_route: 'router' })).not.toHaveProperty('kv_route')
    const random = resolveConfig({ ...kv, kv_route: 'random', kv_route_shares: [0.25, 0.5, 0.25] } as any)
    expect(random.kv_route_shares).toEqual([
      [0.25, 0.5, 0.25],
      [0.25, 0.5, 0.25],
    ])
    expect(random).not.toHaveProperty('router_hidden')
    const perLayer = [
      [0.1, 0.9, 0],
      [0, 0.5, 0.5],
    ]
    expect(resolveConfig({ ...kv, kv_route: 'random', kv_route_shares: perLayer } as any).kv_route_shares).toEqual(perLayer)
    expect(resolveConfig({ ...kv, kv_route: 'rule' } as any)).toMatchObject({ kv_route: 'rule', kv_levels: [4, 2, 1] })
    expect(err({ ...kv, kv_route: 'randm' })).toBe(
      'kv_route must be "router" (the learned router, the variant itself), "random" (levels drawn per token with kv_route_shares) or "rule" (levels by character class), got "randm" (did you mean \'random\'?)',
    )
    expect(err({ ...kv, kv_route: 'random' })).toBe(
      'kv_route "random" draws each token\'s level from kv_route_shares: set it to each level\'s share, finest first, e.g. [0.33, 0.33, 0.33]',
    )
    expect(err({ ...kv, kv_route: 'random', kv_route_shares: [0.5, 0.6, -0.1] })).toMatch(/^kv_route_shares must be a list of 3 non-negative shares/)
    expect(err({ ...kv, kv_route: 'random', kv_route_shares: [0.5, 0.6, 0] })).toBe(
      'kv_route_shares row 0 must hold 3 shares (one per level of [4, 2, 1]) summing to 1, got [0.5, 0.6, 0]',
    )
    expect(err({ ...kv, kv_route: 'random', kv_route_shares: [[0.5, 0.5, 0]] })).toMatch(/or 2 such lists \(one per layer\)/)
    expect(err({ ...kv, kv_route_shares: [0.5, 0.5, 0] })).toBe(
      'kv_route_shares is the level mix of kv_route "random" (got kv_route "router"); remove it or set kv_route to "random"',
    )
    expect(err({ ...kv, kv_route: 'rule', kv_levels: [4, 1] })).toMatch(
      /^kv_route "rule" sends spaces and punctuation to the coarsest level.*needs three kv_levels; got \[4, 1\]/,
    )
  })

  it('suggests the closest variant, key and preset', () => {
    expect(err({ ...base, attention: 'moas-top-k' })).toMatch(
      /^unknown attention variant 'moas-top-k' \(did you mean 'moas-topk'\?\)\. Variants: mha, gqa, mqa, /,
    )
    expect(err({ ...base, attention: 'gqe_hard_only' })).toMatch(/did you mean 'gqe-hard-only'\?/)
    expect(err({ ...base, attention: 'mah' })).toMatch(/did you mean 'mha'\?/)
    expect(err({ ...base, attention: 'transformer' })).not.toMatch(/did you mean/)
    expect(err({ ...base, n_kv_heads: 2 })).toMatch(/^unknown config key 'n_kv_heads' \(did you mean 'n_kv_head'\?\)\. Known keys: vocab_size, /)
    expect(err({ ...base, nEmbd: 8 })).toMatch(/unknown config key 'nEmbd' \(did you mean 'n_embd'\?\)/)
    expect(err({ vocab_size: 5 }, 'papr')).toBe("unknown preset 'papr' (did you mean 'paper'?). Presets: paper, smoke, gqe-main")
    expect(didYouMean('zzzzzz', ['mha', 'gqa'])).toBe('')
  })

  it('validates keys a variant does not use, then drops them', () => {
    expect(err({ ...base, attention: 'mha', moas_top_k: -1 })).toBe('moas_top_k must be a positive integer, got -1')
    const cfg = resolveConfig({ ...base, attention: 'mha', n_kv_head: 2, moas_top_k: 2, gqe_shared_kv: 'own' })
    expect(Object.keys(cfg)).toEqual(['vocab_size', 'block_size', 'n_layer', 'n_head', 'n_embd', 'bias', 'dropout', 'attention', 'balance_weight'])
  })
})

describe('queryHeadsPerToken', () => {
  it("counts the attending query heads: GQE's 9 of 16 at 16 q / 8 kv heads (the paper's figure), dense branches in full", () => {
    const at = (attention: string, extra = {}) =>
      queryHeadsPerToken(resolveConfig({ vocab_size: 10, n_head: 16, n_embd: 256, n_kv_head: 8, attention, ...extra }, 'smoke'))
    expect(at('gqa')).toBe(16)
    expect(at('gqe')).toBe(9)
    expect(at('gqe-hard-only')).toBe(9)
    expect(at('gqe-no-renorm')).toBe(9)
    expect(at('gqe-no-shared')).toBe(8)
    expect(at('gqe', { gqe_top_k: 2 })).toBe(17)
    expect(at('moas')).toBe(48)
    expect(at('moas-topk')).toBe(16)
    expect(at('mqa')).toBe(16)
  })
})
