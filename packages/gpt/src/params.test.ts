import { schemeCost } from '@moas/attention-schemes'
import { describe, expect, it } from 'vitest'
import { resolveConfig } from './config'
import { schemeConfig } from './moas'
import { kvCacheBytesPerToken, paramCounts, paramShapes } from './params'
import { VARIANTS } from './variants'

const paper = (attention: string, extra: Record<string, unknown> = {}) => resolveConfig({ vocab_size: 283, attention, ...extra }, 'paper')

describe('parameter counts', () => {
  it("reproduce the MoAS paper's table (vocab 283, 4 layers, 6 heads, 384 wide, block 256, no bias)", () => {
    expect(paramCounts(paper('mha'))).toMatchObject({ excludingPositionEmbedding: 7_190_016, total: 7_288_320 })
    expect(paramCounts(paper('static-moas'))).toMatchObject({ excludingPositionEmbedding: 10_139_136, total: 10_237_440 })
    expect(paramCounts(paper('moas'))).toMatchObject({ excludingPositionEmbedding: 10_287_744, total: 10_386_048 })
  })

  it('agree with a hand count for every variant (the head is tied: no lm_head)', () => {
    const C = 384,
      L = 4,
      V = 283,
      H = 6,
      d = 64
    const shell = V * C + 256 * C + C + L * (2 * C + 8 * C * C) // embeddings, ln_f; per layer ln_1, ln_2, MLP
    const proj = (G: number) => 2 * C * C + 2 * G * d * C // q, c_proj, k, v
    const attn: Record<string, number> = {
      mha: proj(H),
      gqa: proj(2),
      mqa: proj(1),
      'static-moas': proj(H) + proj(2) + proj(1),
      moas: proj(H) + proj(2) + proj(1) + 96 * C + 3 * 96,
      'moas-topk': proj(H) + proj(2) + proj(1) + 96 * C + 3 * 96,
      // G = 3 groups of M = 2, k = 1: q (H·d), k, v (G·d), router (G·M), shared q (d), c_proj (slots·d → C)
      gqe: C * C + 2 * 3 * d * C + 6 * C + d * C + (3 + 2) * d * C,
      'gqe-hard-only': C * C + 2 * 3 * d * C + 6 * C + d * C + (3 + 1) * d * C,
      'gqe-no-renorm': C * C + 2 * 3 * d * C + 6 * C + d * C + (3 + 1) * d * C,
      'gqe-no-shared': C * C + 2 * 3 * d * C + 6 * C + (3 + 1) * d * C,
      // q, k, v, c_proj as mha (levels 6/2/1 derived: no weights), router C→96→3
      'moas-kv': 4 * C * C + 96 * C + 3 * 96,
    }
    for (const v of VARIANTS) {
      const counts = paramCounts(paper(v))
      expect(counts.total, v).toBe(shell + L * attn[v])
      expect(Object.keys(counts.perTensor).some((n) => n.includes('lm_head'))).toBe(false)
    }
    expect(paramCounts(paper('gqe', { gqe_shared_kv: 'own' })).total).toBe(shell + L * (attn.gqe + 2 * d * C))
    // own level weights: k and v projections for the 2- and 1-head levels
    expect(paramCounts(paper('moas-kv', { kv_level_weights: 'own' })).total).toBe(shell + L * (attn['moas-kv'] + 2 * (2 + 1) * d * C))
  })

  it('the plain schemes match the attention-schemes cost model', () => {
    for (const v of ['mha', 'gqa', 'mqa'] as const) {
      const cfg = paper(v)
      const attn = Object.entries(paramCounts(cfg).perTensor)
        .filter(([n]) => n.startsWith('transformer.h.0.attn.'))
        .reduce((a, [, c]) => a + c, 0)
      expect(attn, v).toBe(schemeCost(schemeConfig(v, cfg), { contextLength: 256 }).params)
    }
  })

  it('names GQE tensors as the spec does', () => {
    const shapes = paramShapes(
      resolveConfig({ vocab_size: 11, block_size: 8, n_layer: 1, n_head: 4, n_embd: 8, attention: 'gqe', gqe_shared_kv: 'own', bias: true }),
    )
    const attn = [...shapes]
      .filter(([n]) => n.includes('.attn.'))
      .map(([n, s]) => `${n.replace('transformer.h.0.attn.', '')} [${s}]`)
      .sort()
    expect(attn).toEqual([
      'c_proj.bias [8]',
      'c_proj.weight [8,8]',
      'k_proj.bias [4]',
      'k_proj.weight [4,8]',
      'q_proj.bias [8]',
      'q_proj.weight [8,8]',
      'router.bias [4]',
      'router.weight [4,8]',
      'shared_k_proj.bias [2]',
      'shared_k_proj.weight [2,8]',
      'shared_q_proj.bias [2]',
      'shared_q_proj.weight [2,8]',
      'shared_v_proj.bias [2]',
      'shared_v_proj.weight [2,8]',
      'v_proj.bias [4]',
      'v_proj.weight [4,8]',
    ])
  })
})

describe('KV cache bytes per token', () => {
  it('is 2 · n_layer · kv heads · head dim · bytes, MoAS holding every branch', () => {
    const per = (heads: number, bytes = 4) => 2 * 4 * heads * 64 * bytes
    expect(kvCacheBytesPerToken(paper('mha'))).toBe(per(6))
    expect(kvCacheBytesPerToken(paper('gqa'))).toBe(per(2))
    expect(kvCacheBytesPerToken(paper('mqa'), 2)).toBe(per(1, 2))
    for (const v of ['static-moas', 'moas', 'moas-topk']) expect(kvCacheBytesPerToken(paper(v)), v).toBe(per(6 + 2 + 1))
    expect(kvCacheBytesPerToken(paper('gqe'))).toBe(per(3))
    expect(kvCacheBytesPerToken(paper('gqe', { gqe_shared_kv: 'own' }))).toBe(per(4))
    expect(kvCacheBytesPerToken(paper('gqe-no-shared', { gqe_shared_kv: 'own' }))).toBe(per(3))
    for (const v of ['mha', 'gqa', 'mqa'] as const) {
      const cfg = paper(v)
      expect(kvCacheBytesPerToken(cfg)).toBe(schemeCost(schemeConfig(v, cfg), { contextLength: 256 }).kvCacheBytesPerToken)
    }
  })
})
