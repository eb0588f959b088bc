/** Routing choices and statistics: read off a real routing session, and computed exactly on known inputs. */
import { buildLogitsGraph, CharTokenizer, resolveConfig, type Variant } from '@moas/gpt'
import { randomWeights } from '@moas/gpt/testing'
import { describe, expect, it } from 'vitest'
import { DecoderSession } from './decoder'
import { routingReport } from './report'
import { charClass, type RoutingChoice, routeText, routingChoices, routingStats } from './routing'

const tokenizer = CharTokenizer.fromText('abc 12.\n<unk>')
const cfg = (attention: Variant) => resolveConfig({ vocab_size: tokenizer.vocabSize, block_size: 8, n_layer: 2, n_head: 4, n_embd: 16, attention })
const weights = (c: ReturnType<typeof cfg>) => randomWeights(buildLogitsGraph(c), 5) as Map<string, Float32Array>

describe('routing choices', () => {
  it('moas: the scheme with the highest gate; moas-topk: the chosen branch; GQE: the expert chosen per group', async () => {
    for (const v of ['moas', 'moas-topk', 'gqe'] as const) {
      const c = cfg(v)
      const s = await DecoderSession.create({ config: c, params: weights(c) }, { routing: true })
      const run = await s.prefill([[...tokenizer.encode('ab 1.')]])
      const choices = routingChoices(run, c)
      expect(choices).toHaveLength(5)
      for (const [t, layers] of choices.entries()) {
        expect(layers).toHaveLength(2)
        for (const [layer, ch] of layers.entries()) {
          const gates = run.routing[`gates.${layer}`].data as Float32Array
          if (v === 'moas') expect(ch.choice).toBe(ch.gates.indexOf(Math.max(...ch.gates)))
          else
            expect(ch.choice).toBe(
              Number(
                (run.routing[`chosen.${layer}`].data as BigInt64Array)[t * (v === 'gqe' ? c.n_kv_head! : 1) * (v === 'gqe' ? c.gqe_top_k! : c.moas_top_k!)],
              ),
            )
          expect(ch.gates.length * 5).toBe(gates.length)
          if (v === 'gqe') expect(ch.perGroup).toHaveLength(c.n_kv_head!)
        }
      }
      // a text longer than block_size is routed in windows: one choice per character
      expect(await routeText(s, tokenizer, 'abc 12.\nabc 12.\nab')).toHaveLength(18)
      await s.release()
    }
  })

  it('an unrouted variant is refused', async () => {
    const c = cfg('mha')
    const s = await DecoderSession.create({ config: c, params: weights(c) }, { routing: true })
    await expect(routeText(s, tokenizer, 'abc')).rejects.toThrow(/variant 'mha' has no router/)
    await s.release()
  })
})

describe('routing statistics', () => {
  const c = cfg('moas')
  const pick = (choice: number): RoutingChoice => ({ gates: [0, 1, 2].map((i) => (i === choice ? 0.5 : 0.25)), choice })

  it('shares, classes, line positions, entropy and balance, exactly', () => {
    const text = 'a1 .\nb<unk>'
    const picks = [0, 1, 2, 2, 0, 1, 0, 0, 0, 0, 0] // per character, both layers the same
    const stats = routingStats(
      c,
      text,
      picks.map((p) => [pick(p), pick(p)]),
    )
    expect(stats.positions).toBe(11)
    const L = stats.layers[0]
    expect(L.share).toEqual([7 / 11, 2 / 11, 2 / 11])
    expect(Object.fromEntries(L.byClass.map((x) => [x.cls, x.count]))).toEqual({
      letter: 1,
      digit: 1,
      space: 1,
      punctuation: 1,
      'after newline': 1,
      'inside <unk>': 5,
      other: 1,
    })
    expect(L.byClass.find((x) => x.cls === 'inside <unk>')!.share).toEqual([1, 0, 0])
    expect(L.byLinePosition).toEqual([{ bin: '0–9', count: 11, share: L.share }])
    const h = -(0.5 * Math.log(0.5) + 2 * 0.25 * Math.log(0.25))
    expect(L.entropy).toBeCloseTo(h, 12)
    const mean = [0, 1, 2].map((s) => picks.reduce((a, p) => a + (p === s ? 0.5 : 0.25), 0) / 11)
    expect(L.meanGates).toEqual(mean.map((m) => expect.closeTo(m, 12)))
    expect(L.balance).toBeCloseTo(mean.reduce((a, m) => a + (m - 1 / 3) ** 2, 0) / 3, 12)
    expect(charClass(['\n', 'x'], 1, [false, false])).toBe('after newline')
  })

  it('the report is one self-contained HTML file with an SVG per chart and the text coloured', () => {
    const text = 'ab\ncd'
    const choices = [0, 1, 2, 0, 1].map((p) => [pick(p), pick(p)])
    const html = routingReport({ config: c, stats: routingStats(c, text, choices), text, choices, model: 'm', source: 't' })
    expect(html.startsWith('<!doctype html>')).toBe(true)
    expect(html).not.toMatch(/<script|<link|src="http/)
    expect(html.match(/<svg /g)).toHaveLength(2 * 3)
    expect(html).toContain('title="MQA; gates 0.25 0.25 0.50"')
    expect(html).toContain('Choice: the scheme with the highest gate.')
    const kv = cfg('moas-kv')
    expect(routingReport({ config: kv, stats: routingStats(kv, text, choices), text, choices, model: 'm', source: 't' })).toContain(
      'Choice: the level of KV heads the token wrote.',
    )
  })

  it('the coloured text keeps characters the analysis skipped as unknown, struck through, each known one with its own choice', () => {
    const input = 'a€b\n€c'
    const routed = 'ab\nc'
    const choices = [0, 1, 2, 1].map((p) => [pick(p)])
    const one = resolveConfig({ ...c, n_layer: 1 })
    const html = routingReport({
      config: one,
      stats: routingStats(one, routed, choices),
      text: input,
      unknown: new Set(['€']),
      choices,
      model: 'm',
      source: 't',
    })
    const spans = [...html.matchAll(/<span (class="unknown"|style="background:[^"]*") title="([^"]*)">([^<]*)<\/span>/g)].map((m) => [m[3], m[2].split(';')[0]])
    const skipped = "not in the model's vocabulary: skipped (--skip-unknown)"
    expect(spans).toEqual([
      ['a', 'MHA'],
      ['€', skipped],
      ['b', 'GQA'],
      ['↵\n', 'MQA'],
      ['€', skipped],
      ['c', 'GQA'],
    ])
    expect(html).toContain('(first 6 characters; 2 not in the vocabulary, struck through: skipped; hover for the gates)')
  })
})
