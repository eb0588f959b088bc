import { DataError } from './errors.js'

/** What to do with characters that are not in the vocabulary. */
export type OnUnknown = 'error' | 'skip'

export interface EncodeOptions {
  /** 'error' (default) throws a DataError listing the unknown characters; 'skip' drops them. */
  onUnknown?: OnUnknown
}

/** Serialized form: the id of a character is its index in `vocab`. */
export interface CharTokenizerJSON {
  type: 'char'
  vocab: string[]
}

/** Show at most this many distinct unknown characters in an error message (the rest are counted). */
const MAX_UNKNOWN_SHOWN = 20

/** Code point of a one-character string. */
const cp = (ch: string): number => ch.codePointAt(0)!

/**
 * Character-level tokenizer, as in the MoAS paper's code: `chars = sorted(set(text))`, id = index.
 *
 * "Character" means Unicode code point: we iterate with `for (const ch of text)`, so an astral character
 * (e.g. an emoji, two UTF-16 code units) is one token, exactly as in Python. The vocabulary is sorted by
 * code point, which is Python's order for `sorted(set(text))`. (JavaScript's default sort compares UTF-16
 * code units, which differs from code point order once astral characters are mixed with U+E000..U+FFFF;
 * for BMP-only text such as WikiText-2 the two orders coincide.)
 */
export class CharTokenizer {
  /** The characters, in id order. */
  readonly vocab: readonly string[]
  private readonly ids: Map<string, number>

  constructor(vocab: readonly string[]) {
    const ids = new Map<string, number>()
    vocab.forEach((ch, i) => {
      if (typeof ch !== 'string' || [...ch].length !== 1) {
        throw new DataError(`char tokenizer vocab[${i}] must be a single character, got ${JSON.stringify(ch)}`)
      }
      if (ids.has(ch)) throw new DataError(`char tokenizer vocab has ${JSON.stringify(ch)} twice (ids ${ids.get(ch)} and ${i})`)
      ids.set(ch, i)
    })
    this.vocab = Object.freeze([...vocab])
    this.ids = ids
  }

  /** Vocabulary of the distinct characters of `text`, sorted by code point (Python's `sorted(set(text))`). */
  static fromText(text: string): CharTokenizer {
    return new CharTokenizer([...new Set(text)].sort((a, b) => cp(a) - cp(b)))
  }

  get vocabSize(): number {
    return this.vocab.length
  }

  /** Ids of the characters of `text` (one per code point). */
  encode(text: string, options: EncodeOptions = {}): Int32Array {
    const onUnknown = options.onUnknown ?? 'error'
    // text.length (code units) bounds the number of code points, so one allocation suffices.
    const out = new Int32Array(text.length)
    let n = 0
    let unknown: Map<string, number> | undefined
    for (const ch of text) {
      const id = this.ids.get(ch)
      if (id !== undefined) out[n++] = id
      else (unknown ??= new Map()).set(ch, (unknown.get(ch) ?? 0) + 1)
    }
    if (unknown && onUnknown === 'error') throw new DataError(unknownMessage(unknown))
    return n === out.length ? out : out.slice(0, n)
  }

  /** Text of the ids; accepts int64 model outputs (BigInt64Array) as well as numbers. */
  decode(ids: Iterable<number | bigint>): string {
    const parts: string[] = []
    for (const raw of ids) {
      const id = Number(raw)
      const ch = this.vocab[id]
      if (ch === undefined) throw new DataError(`cannot decode id ${raw}: vocabulary has ids 0..${this.vocab.length - 1}`)
      parts.push(ch)
    }
    return parts.join('')
  }

  toJSON(): CharTokenizerJSON {
    return { type: 'char', vocab: [...this.vocab] }
  }

  /** Inverse of toJSON (e.g. from a checkpoint); validates the shape so a wrong file fails clearly. */
  static fromJSON(obj: unknown): CharTokenizer {
    if (typeof obj !== 'object' || obj === null) throw new DataError(`tokenizer JSON must be an object, got ${describe(obj)}`)
    const { type, vocab } = obj as Record<string, unknown>
    if (type !== 'char') throw new DataError(`tokenizer JSON has type ${JSON.stringify(type)}; expected "char"`)
    if (!Array.isArray(vocab)) throw new DataError(`char tokenizer JSON needs "vocab": an array of characters, got ${describe(vocab)}`)
    return new CharTokenizer(vocab)
  }
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v
}

function unknownMessage(unknown: Map<string, number>): string {
  const chars = [...unknown.keys()]
  const occurrences = [...unknown.values()].reduce((a, b) => a + b, 0)
  const shown = chars.slice(0, MAX_UNKNOWN_SHOWN).map((c) => JSON.stringify(c)).join(', ')
  const more = chars.length > MAX_UNKNOWN_SHOWN ? `, … and ${chars.length - MAX_UNKNOWN_SHOWN} more` : ''
  return (
    `text has ${chars.length} character(s) not in the tokenizer vocabulary (${occurrences} occurrence(s)): ` +
    `${shown}${more}. Pass { onUnknown: 'skip' } (CLI: --skip-unknown) to drop them, ` +
    `or build the vocabulary from text that contains them.`
  )
}
