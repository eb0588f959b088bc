import { describe, expect, it } from 'vitest'
import { SYNTHETIC_ALPHABET, syntheticCorpus } from './synthetic.js'

const OPEN: Record<string, string> = { '(': ')', '[': ']', '{': '}', '<': '>' }

/** Complete item lines of a corpus (the last line may be cut off, so it is dropped). */
const lines = (text: string) =>
  text
    .split('\n')
    .slice(0, -1)
    .filter((l) => l.length > 0)

describe('syntheticCorpus', () => {
  const text = syntheticCorpus({ seed: 1, chars: 200_000 })

  it('is deterministic for a seed and differs across seeds', () => {
    expect(text.length).toBe(200_000)
    expect(syntheticCorpus({ seed: 1, chars: 200_000 })).toBe(text)
    expect(syntheticCorpus({ seed: 1, chars: 1000 })).toBe(text.slice(0, 1000))
    expect(syntheticCorpus({ seed: 2, chars: 1000 })).not.toBe(text.slice(0, 1000))
  })

  it('uses a small fixed alphabet', () => {
    expect(SYNTHETIC_ALPHABET.length).toBeLessThanOrEqual(64)
    expect([...new Set(text)].sort()).toEqual([...SYNTHETIC_ALPHABET])
  })

  it('has the default size', () => {
    expect(syntheticCorpus().length).toBe(1_000_000)
  })

  it('contains every item kind, with determined answers', () => {
    const counts = { recall: 0, copy: 0, bracket: 0, filler: 0 }
    for (const line of lines(text)) {
      if (line.includes('?')) {
        // Recall: every query's answer is the value of that key's pair, and keys are distinct.
        const pairs = new Map<string, string>()
        const tokens = line.split(' ')
        for (const t of tokens.filter((t) => t.includes(':'))) {
          const [k, v] = t.split(':')
          expect(pairs.has(k)).toBe(false)
          pairs.set(k, v)
        }
        const queries = tokens.filter((t) => t.startsWith('?'))
        expect(queries.length).toBeGreaterThan(0)
        for (const q of queries) {
          const m = /^\?([a-z]+)=([a-z0-9]{3})$/.exec(q)!
          expect(m).not.toBeNull()
          expect(pairs.get(m[1])).toBe(m[2])
        }
        counts.recall++
      } else if (line.includes('|')) {
        const [a, b, ...rest] = line.split('|')
        expect(rest).toEqual([])
        expect(a).toMatch(/^[a-z0-9]{4,40}$/)
        expect(b).toBe(a)
        counts.copy++
      } else if (/^[()[\]{}<>]+$/.test(line)) {
        // Brackets: every closer matches the innermost open bracket, and all close.
        const stack: string[] = []
        for (const c of line) {
          if (c in OPEN) stack.push(OPEN[c])
          else expect(stack.pop()).toBe(c)
          expect(stack.length).toBeLessThanOrEqual(8)
        }
        expect(stack).toEqual([])
        counts.bracket++
      } else {
        expect(line).toMatch(/^([a-z]+ )+[a-z]+\.( ([a-z]+ )+[a-z]+\.)*$/)
        counts.filler++
      }
    }
    for (const n of Object.values(counts)) expect(n).toBeGreaterThan(500)
  })
})

describe('syntheticDetermined', () => {
  it('marks the recall values of known keys, the copied half and the closers, nothing in filler', async () => {
    const { syntheticDetermined } = await import('./synthetic.js')
    const text = 'ab:x7k cd:041 ?ab=x7k ?zz=123\nk2v9|k2v9\n([]){}\nthe cat sees a dog.\n'
    const d = syntheticDetermined(text)
    const at = (task: string) =>
      d
        .filter((x) => x.task === task)
        .map((x) => text[x.index])
        .join('')
    expect(at('recall')).toBe('x7k') // ?zz= has no pair on its line: not determined
    expect(at('copy')).toBe('k2v9')
    expect(at('brackets')).toBe('])}')
    expect(d.every((x) => text.lastIndexOf('\n', x.index - 1) + 1 === x.lineStart)).toBe(true)
  })

  it('on the generated corpus, every determined character is what its rule says', async () => {
    const { syntheticCorpus, syntheticDetermined } = await import('./synthetic.js')
    const text = syntheticCorpus({ seed: 3, chars: 20_000 })
    const d = syntheticDetermined(text)
    expect(new Set(d.map((x) => x.task))).toEqual(new Set(['recall', 'copy', 'brackets']))
    for (const x of d.filter((y) => y.task === 'copy')) {
      const line = text.slice(x.lineStart, text.indexOf('\n', x.lineStart) >>> 0)
      const bar = line.indexOf('|')
      expect(line[x.index - x.lineStart]).toBe(line[x.index - x.lineStart - bar - 1])
    }
  })
})
