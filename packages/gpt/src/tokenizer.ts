/**
 * The one tokenizer of moas: character level, as in the MoAS paper's code, with its Hugging Face
 * tokenizers form (tokenizer.json) for exported model folders.
 */

/** Text the tokenizer cannot encode, ids it cannot decode, or a malformed tokenizer file. */
export class TokenizerError extends Error {
  override name = 'TokenizerError'
}

/** What to do with characters that are not in the vocabulary. */
export type OnUnknown = 'error' | 'skip'

export interface EncodeOptions {
  /** 'error' (default) throws a TokenizerError listing the unknown characters; 'skip' drops them. */
  onUnknown?: OnUnknown
}

/**
 * The tokenizer.json that checkpoints written before the Hugging Face format held (the id of a character is
 * its index in `vocab`); CharTokenizer.fromJSON still reads it.
 */
export interface LegacyCharTokenizerJSON {
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
        throw new TokenizerError(`char tokenizer vocab[${i}] must be a single character, got ${JSON.stringify(ch)}`)
      }
      if (ids.has(ch)) throw new TokenizerError(`char tokenizer vocab has ${JSON.stringify(ch)} twice (ids ${ids.get(ch)} and ${i})`)
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
      else {
        unknown ??= new Map()
        unknown.set(ch, (unknown.get(ch) ?? 0) + 1)
      }
    }
    if (unknown && onUnknown === 'error') throw new TokenizerError(unknownMessage(unknown))
    return n === out.length ? out : out.slice(0, n)
  }

  /** Text of the ids; accepts int64 model outputs (BigInt64Array) as well as numbers. */
  decode(ids: Iterable<number | bigint>): string {
    const parts: string[] = []
    for (const raw of ids) {
      const id = Number(raw)
      const ch = this.vocab[id]
      if (ch === undefined) throw new TokenizerError(`cannot decode id ${raw}: vocabulary has ids 0..${this.vocab.length - 1}`)
      parts.push(ch)
    }
    return parts.join('')
  }

  /** The one tokenizer.json format, in checkpoints and exported folders alike: Hugging Face's (toHuggingFaceTokenizer). */
  toJSON(): Record<string, unknown> {
    return toHuggingFaceTokenizer(this)
  }

  /** Inverse of toJSON, reading legacy checkpoints' {"type": "char"} files too; a wrong file fails clearly. */
  static fromJSON(obj: unknown, where = 'tokenizer.json'): CharTokenizer {
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
      throw new TokenizerError(`${where} must hold a JSON object (a Hugging Face tokenizer), got ${describe(obj)}`)
    const { type, vocab } = obj as Record<string, unknown>
    if (type === undefined) return fromHuggingFaceTokenizer(obj, where)
    if (type !== 'char') throw new TokenizerError(`${where} has type ${JSON.stringify(type)}; expected a Hugging Face tokenizer (or a legacy "char" one)`)
    if (!Array.isArray(vocab)) throw new TokenizerError(`${where}: a legacy char tokenizer needs "vocab": an array of characters, got ${describe(vocab)}`)
    return new CharTokenizer(vocab)
  }
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v
}

function unknownMessage(unknown: Map<string, number>): string {
  const chars = [...unknown.keys()]
  const occurrences = [...unknown.values()].reduce((a, b) => a + b, 0)
  const shown = chars
    .slice(0, MAX_UNKNOWN_SHOWN)
    .map((c) => JSON.stringify(c))
    .join(', ')
  const more = chars.length > MAX_UNKNOWN_SHOWN ? `, … and ${chars.length - MAX_UNKNOWN_SHOWN} more` : ''
  return (
    `text has ${chars.length} character(s) not in the tokenizer vocabulary (${occurrences} occurrence(s)): ` +
    `${shown}${more}. Pass { onUnknown: 'skip' } (CLI: --skip-unknown) to drop them, ` +
    `or build the vocabulary from text that contains them.`
  )
}

// ---------------------------------------------------------------- Hugging Face tokenizers format

/**
 * tokenizer.json (Hugging Face tokenizers) for a character tokenizer, with ids equal to moas's: a BPE
 * model whose vocabulary is the characters and which has no merges, so every character is one token;
 * no normalizer, no pre-tokenizer (spaces and newlines are ordinary characters), a Fuse decoder (tokens
 * are concatenated as they are). No special tokens: moas models have no BOS/EOS.
 */
export function toHuggingFaceTokenizer(tok: CharTokenizer): Record<string, unknown> {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(tok.vocab.map((ch, i) => [ch, i])),
      merges: [],
    },
  }
}

/** The character tokenizer of a tokenizer.json written by toHuggingFaceTokenizer (or any char-level BPE without merges). */
export function fromHuggingFaceTokenizer(json: unknown, where = 'tokenizer.json'): CharTokenizer {
  const model = (json as { model?: { type?: unknown; vocab?: unknown; merges?: unknown } } | null)?.model
  if (model?.type !== 'BPE' || typeof model.vocab !== 'object' || model.vocab === null)
    throw new TokenizerError(
      `${where}: expected a Hugging Face tokenizer with a BPE model and a vocab (as moas export writes); got ${model ? `model type ${JSON.stringify(model.type)}` : 'no "model"'}`,
    )
  if (Array.isArray(model.merges) && model.merges.length > 0)
    throw new TokenizerError(`${where}: has ${model.merges.length} BPE merges; moas models are character level (no merges)`)
  const entries = Object.entries(model.vocab as Record<string, unknown>)
  const vocab: string[] = new Array(entries.length)
  for (const [ch, id] of entries) {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= entries.length || vocab[id as number] !== undefined)
      throw new TokenizerError(`${where}: vocab ids must be 0..${entries.length - 1}, each once; ${JSON.stringify(ch)} has id ${JSON.stringify(id)}`)
    vocab[id as number] = ch
  }
  return new CharTokenizer(vocab)
}
