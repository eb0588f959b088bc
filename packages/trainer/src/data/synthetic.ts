import { Mulberry32 } from '@moas/tensor-core'

/**
 * The synthetic corpus: a default dataset that needs no download and on which attention schemes
 * measurably differ, because predicting it well requires retrieving information from far back in the
 * context (which MHA/GQA/MQA do with different capacity), not just local statistics.
 *
 * Generated procedurally and deterministically from a seed (mulberry32; same seed → same string on
 * every platform). The text is a sequence of documents; each document is 3-8 lines followed by an empty
 * line; each line is one item of one of four kinds, drawn with probabilities 0.3 / 0.2 / 0.2 / 0.3:
 *
 * (a) associative recall — 4-16 `key:value` pairs with distinct keys (2-3 lowercase letters; values are
 *     3 characters from [a-z0-9]), optionally a filler sentence, then 1-3 queries `?key=value` for keys of
 *     the list. The value after `?key=` is determined by the pair with that key earlier on the line.
 *       `qe:x7k mab:041 zu:pp2 ... the red cat sees a dog. ?mab=041 ?qe=x7k`
 * (b) copying — a random string of 4-40 characters from [a-z0-9], `|`, then the same string again.
 *     Everything after the `|` is determined.
 *       `k2v9qa0m|k2v9qa0m`
 * (c) bracket matching — a well-nested sequence of 2-16 bracket pairs of four kinds `() [] {} <>`,
 *     nesting depth ≤ 8. Which opener comes next, and when to close, are random; the kind of each closer
 *     is determined (it closes the innermost open bracket).
 *       `([{}<>]){[]}`
 * (d) filler — 1-3 sentences `det [adj] noun verb det [adj] noun.` from a small word list, giving
 *     local, n-gram-style statistics.
 *       `the old king finds a fish. my boat likes each small girl.`
 *
 * Alphabet (SYNTHETIC_ALPHABET, 51 characters): a-z, 0-9, space, newline, `: ? = | .` and `()[]{}<>`.
 */
export interface SyntheticOptions {
  /** PRNG seed (default 0). */
  seed?: number
  /** Exact length of the returned string (default 1,000,000); the last item may be cut off. */
  chars?: number
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz'
const ALNUM = `${LETTERS}0123456789`
const BRACKETS = ['()', '[]', '{}', '<>'] as const

/** Every character the synthetic corpus can contain, in code point order. */
export const SYNTHETIC_ALPHABET: readonly string[] = Object.freeze([...new Set(`${LETTERS}0123456789 \n:?=|.${BRACKETS.join('')}`)].sort())

const WORDS = {
  det: ['the', 'a', 'my', 'each', 'one'],
  adj: ['big', 'small', 'red', 'old', 'new', 'calm', 'quick'],
  noun: ['cat', 'dog', 'bird', 'fish', 'tree', 'house', 'boat', 'girl', 'boy', 'king'],
  verb: ['sees', 'likes', 'finds', 'eats', 'moves', 'holds', 'helps', 'calls'],
}

const randString = (rng: Mulberry32, alphabet: string, n: number): string => {
  let s = ''
  for (let i = 0; i < n; i++) s += alphabet[rng.int(alphabet.length)]
  return s
}

function nounPhrase(rng: Mulberry32): string {
  const adj = rng.next() < 0.4 ? `${rng.pick(WORDS.adj)} ` : ''
  return `${rng.pick(WORDS.det)} ${adj}${rng.pick(WORDS.noun)}`
}

function sentence(rng: Mulberry32): string {
  return `${nounPhrase(rng)} ${rng.pick(WORDS.verb)} ${nounPhrase(rng)}.`
}

function fillerItem(rng: Mulberry32): string {
  return Array.from({ length: rng.range(1, 3) }, () => sentence(rng)).join(' ')
}

function recallItem(rng: Mulberry32): string {
  const pairs = new Map<string, string>()
  const n = rng.range(4, 16)
  while (pairs.size < n) {
    const key = randString(rng, LETTERS, rng.range(2, 3))
    if (!pairs.has(key)) pairs.set(key, randString(rng, ALNUM, 3))
  }
  const keys = [...pairs.keys()]
  const parts = keys.map((k) => `${k}:${pairs.get(k)}`)
  // A filler sentence between the list and the queries pushes the answer further from its pair.
  if (rng.next() < 0.5) parts.push(sentence(rng))
  for (let q = rng.range(1, 3); q > 0; q--) {
    const k = rng.pick(keys)
    parts.push(`?${k}=${pairs.get(k)}`)
  }
  return parts.join(' ')
}

function copyItem(rng: Mulberry32): string {
  const s = randString(rng, ALNUM, rng.range(4, 40))
  return `${s}|${s}`
}

function bracketItem(rng: Mulberry32): string {
  const pairs = rng.range(2, 16)
  const stack: string[] = []
  let out = ''
  let opened = 0
  while (opened < pairs || stack.length > 0) {
    const canOpen = opened < pairs && stack.length < 8
    if (canOpen && (stack.length === 0 || rng.next() < 0.55)) {
      const kind = rng.pick(BRACKETS)
      out += kind[0]
      stack.push(kind[1])
      opened++
    } else {
      out += stack.pop()
    }
  }
  return out
}

const ITEMS = [recallItem, recallItem, recallItem, copyItem, copyItem, bracketItem, bracketItem, fillerItem, fillerItem, fillerItem]

/** A deterministic synthetic corpus of exactly `chars` characters (see the module comment for the language). */
export function syntheticCorpus(options: SyntheticOptions = {}): string {
  const chars = options.chars ?? 1_000_000
  if (!Number.isInteger(chars) || chars < 0) throw new RangeError(`chars must be a non-negative integer, got ${chars}`)
  const rng = new Mulberry32(options.seed ?? 0)
  const docs: string[] = []
  let length = 0
  while (length < chars) {
    const lines = Array.from({ length: rng.range(3, 8) }, () => rng.pick(ITEMS)(rng))
    const doc = `${lines.join('\n')}\n\n`
    docs.push(doc)
    length += doc.length
  }
  return docs.join('').slice(0, chars)
}

export const SYNTHETIC_TASKS = ['recall', 'copy', 'brackets'] as const
export type SyntheticTask = (typeof SYNTHETIC_TASKS)[number]

/** A character of the synthetic corpus that its line's beginning determines. */
export interface DeterminedChar {
  task: SyntheticTask
  /** Index of the character in the text. */
  index: number
  /** Index of the first character of its line (the context a prediction needs). */
  lineStart: number
}

const RECALL_LINE = /^[a-z]{2,3}:[a-z0-9]{3}( |$)/
const COPY_LINE = /^([a-z0-9]{4,40})\|/
const BRACKET_LINE = /^[()[\]{}<>]+$/

/**
 * The determined characters of a synthetic text (see the module comment): the 3 value characters after
 * each `?key=` whose key has a pair earlier on the line (recall), everything after `|` (copy), and every
 * closing bracket, whose kind is determined once it closes (brackets). Filler lines determine nothing.
 */
export function syntheticDetermined(text: string): DeterminedChar[] {
  const out: DeterminedChar[] = []
  let start = 0
  for (const line of text.split('\n')) {
    if (RECALL_LINE.test(line)) {
      const pairs = new Set([...line.matchAll(/(?:^| )([a-z]{2,3}):[a-z0-9]{3}/g)].map((m) => m[1]))
      for (const m of line.matchAll(/\?([a-z]{2,3})=/g)) {
        if (!pairs.has(m[1])) continue
        const at = m.index + m[0].length
        for (let j = 0; j < 3 && at + j < line.length; j++) out.push({ task: 'recall', index: start + at + j, lineStart: start })
      }
    } else if (COPY_LINE.test(line)) {
      const bar = line.indexOf('|')
      for (let j = bar + 1; j < line.length; j++) out.push({ task: 'copy', index: start + j, lineStart: start })
    } else if (BRACKET_LINE.test(line)) {
      for (let j = 0; j < line.length; j++) if (')]}>'.includes(line[j])) out.push({ task: 'brackets', index: start + j, lineStart: start })
    }
    start += line.length + 1
  }
  return out
}
