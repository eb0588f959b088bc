import { describe, expect, it } from 'vitest'
import { niceTicks, paretoChart, valLossChart } from './chart'

/** A strict little XML check: one root, balanced tags, quoted attributes, only the five entities. */
function assertWellFormed(xml: string) {
  const stack: string[] = []
  let roots = 0
  const body = xml.replace(/^<\?xml[^>]*\?>\s*/, '')
  const re = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)|(<)/g
  for (let m = re.exec(body); m; m = re.exec(body)) {
    const [, close, name, , selfClose, text, stray] = m
    if (stray) throw new Error(`stray '<' at ${m.index}`)
    if (text !== undefined) {
      if (!stack.length && text.trim()) throw new Error(`text outside the root: ${text}`)
      if (/&(?!(amp|lt|gt|quot|apos);)/.test(text)) throw new Error(`bad entity in ${text}`)
      continue
    }
    if (close) {
      if (stack.pop() !== name) throw new Error(`mismatched </${name}>`)
    } else {
      if (!stack.length) roots++
      if (!selfClose) stack.push(name)
    }
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`)
  if (roots !== 1) throw new Error(`${roots} root elements`)
}

const curve = (base: number, spread: number) =>
  [50, 100, 150, 200].map((step, i) => ({ step, mean: base - i * 0.1, min: base - i * 0.1 - spread, max: base - i * 0.1 + spread }))

describe('valLossChart', () => {
  it('is well-formed SVG with a line, a band and a legend entry per series', () => {
    const svg = valLossChart(
      [
        { name: 'mha', points: curve(2.5, 0.02) },
        { name: 'moas <dynamic> & co', points: curve(2.55, 0.03) },
      ],
      { title: 'val loss' },
    )
    assertWellFormed(svg)
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true)
    expect(svg.match(/<polyline /g)).toHaveLength(2)
    expect(svg.match(/<polygon /g)).toHaveLength(2)
    expect(svg).toContain('moas &lt;dynamic&gt; &amp; co')
    expect(svg).not.toMatch(/NaN|Infinity/)
    // Deterministic: the same input gives the same bytes.
    expect(valLossChart([{ name: 'mha', points: curve(2.5, 0.02) }])).toBe(valLossChart([{ name: 'mha', points: curve(2.5, 0.02) }]))
  })

  it("a single run's chart (seedNotes false) leaves out the legend's notes about seeds", () => {
    const series = [{ name: 'training', points: curve(2.5, 0) }]
    expect(valLossChart(series)).toContain('line: mean over seeds')
    const single = valLossChart(series, { seedNotes: false })
    assertWellFormed(single)
    expect(single).not.toMatch(/over seeds/)
    expect(single).toContain('>training</text>')
  })

  it('draws each seed as a thin line in its series colour, titled with the seed', () => {
    const seeds = [0, 1, 2].map((seed) => ({ seed, points: curve(2.5 + seed * 0.01, 0).map((p) => ({ step: p.step, value: p.mean })) }))
    const svg = valLossChart([
      { name: 'mha', points: curve(2.51, 0.01), seeds },
      { name: 'moas', points: curve(2.6, 0.01) },
    ])
    assertWellFormed(svg)
    const thin = svg.match(/<polyline [^>]*stroke-width="1"[^>]*><title>[^<]*<\/title><\/polyline>/g) ?? []
    expect(thin).toHaveLength(3)
    expect(thin.every((l) => l.includes('stroke="#0072B2"'))).toBe(true)
    expect(thin[2]).toContain('<title>mha, seed 2</title>')
    expect(svg).toContain('thin lines: one per seed')
    expect(valLossChart([{ name: 'mha', points: curve(2.51, 0.01) }])).not.toContain('thin lines')
  })

  it('draws no band for a single seed and survives empty or flat data', () => {
    const flat = [{ step: 10, mean: 2, min: 2, max: 2 }]
    const svg = valLossChart([{ name: 'one', points: flat }])
    assertWellFormed(svg)
    expect(svg).not.toContain('<polygon')
    assertWellFormed(valLossChart([]))
    expect(valLossChart([{ name: 'x', points: [{ step: 1, mean: NaN, min: NaN, max: NaN }] }])).not.toMatch(/NaN/)
  })

  it('the checker itself rejects malformed XML', () => {
    expect(() => assertWellFormed('<svg><g></svg>')).toThrow()
    expect(() => assertWellFormed('<svg>a & b</svg>')).toThrow()
    expect(() => assertWellFormed('<svg x=1></svg>')).toThrow()
  })

  it('niceTicks', () => {
    expect(niceTicks(0, 500, 5)).toEqual([0, 100, 200, 300, 400, 500])
    expect(niceTicks(2.27, 2.61, 6)).toEqual([2.3, 2.4, 2.5, 2.6])
  })
})

describe('paretoChart', () => {
  it('places x on a log₂ axis, draws every seed, the mean with its interval, and joins a frontier', () => {
    const svg = paretoChart(
      [
        {
          name: 'static',
          line: true,
          points: [
            { x: 1, seeds: [2.3, 2.32], mean: 2.31, ci95: [2.25, 2.37] },
            { x: 1 / 4, seeds: [2.4], mean: 2.4 },
          ],
        },
        { name: 'routed <kv>', points: [{ x: 1 / 2, seeds: [2.35, 2.36, 2.34], mean: 2.35 }] },
      ],
      { title: 'loss against bytes', xLabel: 'KV bytes / MHA' },
    )
    assertWellFormed(svg)
    expect(svg.match(/<polyline /g)).toHaveLength(1) // only the static series is joined
    expect(svg.match(/ r="2" /g)).toHaveLength(6) // one small dot per seed
    expect(svg.match(/ r="4.5" /g)).toHaveLength(5) // three means, two legend marks
    // log₂ axis: x = 1/2 lies exactly halfway between 1/4 and 1
    const cx = (title: string) => Number(svg.match(new RegExp(`<circle cx="([\\d.]+)"[^>]*><title>${title}`))![1])
    expect(cx('routed &lt;kv&gt; at 0.500') - cx('static at 0.250')).toBeCloseTo(cx('static at 1.000') - cx('routed &lt;kv&gt; at 0.500'), 1)
    expect(svg).toContain('>1/2<')
    expect(svg).toContain('routed &lt;kv&gt;')
  })
})
