import { Graph } from '@moas/tensor-core'
import { describe, expect, it } from 'vitest'
import { schemeCost } from './cost'
import { type GroupedAttentionConfig, groupedAttention } from './scheme'

const small = { nEmbd: 8, nHead: 4, nKvHead: 2, nLayer: 3, bias: false, dropout: 0 }
const paper = { nEmbd: 384, nHead: 6, nLayer: 4, bias: false, dropout: 0.1 }

function graphParamCount(cfg: GroupedAttentionConfig): number {
  const g = new Graph('count')
  groupedAttention(g.input('x', 'float32', [1, 4, cfg.nEmbd]), cfg, 'a.', { training: false })
  return g.params.reduce((n, p) => n + (p.tensor.shape as number[]).reduce((a, b) => a * b, 1), 0)
}

describe('schemeCost', () => {
  it('counts a small gqa by hand (C=8, H=4, G=2, d=2, 3 layers, T=10)', () => {
    // params: q 8·8 + k 4·8 + v 4·8 + c_proj 8·8 = 192
    // flops/token: 2·192 (projections) + 2·2·T·d·H = 4·10·2·4 = 320 (q·kᵀ and p·v over T keys)
    // kv bytes/token: 2 (k and v) · 3 layers · 2 kv heads · d 2 · 4 bytes = 96
    expect(schemeCost(small, { contextLength: 10 })).toEqual({
      params: 192,
      flopsPerToken: 704,
      kvCacheBytesPerToken: 96,
      totalParams: 576,
      totalFlopsPerToken: 2112,
    })
    expect(schemeCost({ ...small, bias: true }, { contextLength: 10, bytesPerElement: 2 })).toMatchObject({
      params: 192 + 8 + 4 + 4 + 8,
      kvCacheBytesPerToken: 48,
    })
  })

  it('matches the parameters the graph actually creates, for every scheme, with and without bias', () => {
    for (const bias of [false, true]) {
      for (const cfg of [{ ...small, nKvHead: 4, fusedQkv: true }, { ...small, nKvHead: 4 }, small, { ...small, nKvHead: 1 }]) {
        const c = { ...cfg, bias }
        expect(schemeCost(c, { contextLength: 5 }).params).toBe(graphParamCount(c))
      }
    }
  })

  it("reproduces the paper's parameter gap: static-moas − mha = n_layer × (gqa + mqa attention params)", () => {
    const gqa = schemeCost({ ...paper, nKvHead: 2 }, { contextLength: 256 })
    const mqa = schemeCost({ ...paper, nKvHead: 1 }, { contextLength: 256 })
    expect(gqa.totalParams + mqa.totalParams).toBe(10_139_136 - 7_190_016)
  })

  it('KV cache = 2 · n_layer · n_kv_head · d · bytes; only the KV heads change it, and context length does not', () => {
    const kv = (nKvHead: number, T = 256) => schemeCost({ ...paper, nKvHead }, { contextLength: T }).kvCacheBytesPerToken
    expect(kv(6)).toBe(2 * 4 * 6 * 64 * 4)
    expect(kv(2)).toBe(2 * 4 * 2 * 64 * 4)
    expect(kv(1)).toBe(2 * 4 * 1 * 64 * 4)
    expect(kv(1, 4096)).toBe(kv(1, 256))
  })

  it('attention-core FLOPs scale with query heads and context, not KV heads', () => {
    const f = (nKvHead: number, T: number) => schemeCost({ ...paper, nKvHead }, { contextLength: T }).flopsPerToken
    const proj = (nKvHead: number) => 2 * schemeCost({ ...paper, nKvHead }, { contextLength: 1 }).params
    for (const G of [6, 2, 1]) expect(f(G, 512) - f(G, 256)).toBe(4 * 256 * 64 * 6)
    expect(f(6, 256) - proj(6)).toBe(f(1, 256) - proj(1))
  })

  it('rejects a bad context length', () => {
    expect(() => schemeCost(small, { contextLength: 0 })).toThrow(/contextLength must be a positive integer/)
  })
})

describe('README example', () => {
  it('prints what the README shows for the paper GQA branch', () => {
    expect(schemeCost({ ...paper, nKvHead: 2 }, { contextLength: 256 })).toEqual({
      params: 393216,
      flopsPerToken: 1179648,
      kvCacheBytesPerToken: 4096,
      totalParams: 1572864,
      totalFlopsPerToken: 4718592,
    })
  })
})
