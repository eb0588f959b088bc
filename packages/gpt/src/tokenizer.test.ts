import { describe, expect, it } from 'vitest'
import { CharTokenizer, TokenizerError } from './tokenizer'

describe('CharTokenizer', () => {
  it('builds the vocabulary as sorted(set(text))', () => {
    const tok = CharTokenizer.fromText('hello world')
    expect(tok.vocab).toEqual([' ', 'd', 'e', 'h', 'l', 'o', 'r', 'w'])
    expect(tok.vocabSize).toBe(8)
  })

  it('treats astral characters as one character and sorts by code point', () => {
    // U+1F600 (surrogates D83D DE00) sorts after U+FF5E by code point but before it by UTF-16 unit.
    const tok = CharTokenizer.fromText('～😀a～')
    expect(tok.vocab).toEqual(['a', '～', '😀'])
    expect([...tok.encode('😀a')]).toEqual([2, 0])
  })

  it('round-trips encode/decode', () => {
    const text = 'The quick brown fox @-@ <unk> 😀 ü\n'
    const tok = CharTokenizer.fromText(text)
    const ids = tok.encode(text)
    expect(ids).toBeInstanceOf(Int32Array)
    expect(ids.length).toBe([...text].length)
    expect(tok.decode(ids)).toBe(text)
    expect(tok.decode(BigInt64Array.from(ids, BigInt))).toBe(text)
  })

  it('reports unknown characters with a fix, or skips them', () => {
    const tok = CharTokenizer.fromText('abc')
    const err = (() => {
      try {
        tok.encode('abxyx"c')
      } catch (e) {
        return e as TokenizerError
      }
    })()
    expect(err).toBeInstanceOf(TokenizerError)
    expect(err!.name).toBe('TokenizerError')
    expect(err!.message).toContain('3 character(s)')
    expect(err!.message).toContain('"x", "y", "\\""')
    expect(err!.message).toContain('--skip-unknown')
    expect([...tok.encode('abxyx"c', { onUnknown: 'skip' })]).toEqual([0, 1, 2])
  })

  it('caps the list of unknown characters', () => {
    const tok = CharTokenizer.fromText('a')
    const text = Array.from({ length: 30 }, (_, i) => String.fromCharCode(0x100 + i)).join('')
    expect(() => tok.encode(text)).toThrow(/… and 10 more/)
  })

  it('rejects ids outside the vocabulary', () => {
    expect(() => CharTokenizer.fromText('ab').decode([0, 2])).toThrow(TokenizerError)
  })

  it("round-trips through JSON in the one tokenizer.json format (Hugging Face's), and reads legacy checkpoints' char files", () => {
    const tok = CharTokenizer.fromText('zebra 😀')
    const json = JSON.parse(JSON.stringify(tok))
    expect(json.model).toMatchObject({ type: 'BPE', merges: [], vocab: { ' ': 0, a: 1, b: 2, e: 3, r: 4, z: 5, '😀': 6 } })
    expect(json.decoder).toEqual({ type: 'Fuse' })
    const back = CharTokenizer.fromJSON(json)
    expect(back.vocab).toEqual(tok.vocab)
    expect(back.decode(back.encode('bare 😀'))).toBe('bare 😀')
    expect(CharTokenizer.fromJSON({ type: 'char', vocab: [' ', 'a', 'b', 'e', 'r', 'z', '😀'] }).vocab).toEqual(tok.vocab)
  })

  it('validates JSON clearly', () => {
    expect(() => CharTokenizer.fromJSON(null)).toThrow(/tokenizer.json must hold a JSON object \(a Hugging Face tokenizer\), got null/)
    expect(() => CharTokenizer.fromJSON({ type: 'bpe', vocab: [] })).toThrow(/type "bpe"; expected a Hugging Face tokenizer \(or a legacy "char" one\)/)
    expect(() => CharTokenizer.fromJSON({ model: { type: 'WordPiece', vocab: {} } }, 'ck/tokenizer.json')).toThrow(
      /^ck\/tokenizer.json: expected a Hugging Face tokenizer with a BPE model/,
    )
    expect(() => CharTokenizer.fromJSON({ type: 'char' })).toThrow(/"vocab"/)
    expect(() => CharTokenizer.fromJSON({ type: 'char', vocab: ['a', 'bc'] })).toThrow(/vocab\[1\] must be a single character/)
    expect(() => CharTokenizer.fromJSON({ type: 'char', vocab: ['a', 7] })).toThrow(TokenizerError)
    expect(() => CharTokenizer.fromJSON({ type: 'char', vocab: ['a', 'b', 'a'] })).toThrow(/twice/)
  })
})
