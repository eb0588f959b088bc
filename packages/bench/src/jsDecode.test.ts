import { describe, expect, it } from 'vitest'
import { runJsDecode } from './jsDecode'

describe('js-decode', () => {
  it('transformers.js and both moas graphs write the same greedy text from one exported folder (a small model)', async () => {
    const r = await runJsDecode({
      variant: 'gqe',
      contexts: [40],
      tokens: 5,
      reps: 1,
      threads: 1,
      provider: 'cpu',
      sizes: { n_layer: 1, n_head: 4, n_kv_head: 2, n_embd: 32 },
    })
    expect(r.rows.map((x) => x.runtime)).toEqual(['transformers.js', "moas (graph 'weights')", "moas (graph 'exported')"])
    for (const row of r.rows) expect(row.sameText, row.runtime).toBe(true)
    expect(r.transformersVersion).toBe('4.3.2')
  }, 120_000)
})
