import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CharTokenizer } from '@moas/gpt'
import { afterEach, describe, expect, it } from 'vitest'
import { DataError } from './errors.js'
import { paperSplit } from './split'
import {
  type FetchLike,
  type FileChecksum,
  loadWikitext,
  resolveWikitextDir,
  WIKITEXT_CHECKSUMS,
  WIKITEXT_SPLITS,
  type WikitextSplit,
  wikitextUrl,
} from './wikitext.js'

const temps: string[] = []
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'moas-wikitext-'))
  temps.push(d)
  return d
}
afterEach(() => temps.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })))

const fake: Record<WikitextSplit, string> = { train: 'train text\n', valid: 'valid text\n', test: 'test ü\n' }
const writeSplits = (dir: string) => {
  mkdirSync(dir, { recursive: true })
  for (const s of WIKITEXT_SPLITS) writeFileSync(join(dir, `${s}.txt`), fake[s])
}
const checksumOf = (text: string): FileChecksum => {
  const b = Buffer.from(text, 'utf8')
  return { sha256: createHash('sha256').update(b).digest('hex'), bytes: b.length }
}
const fakeChecksums = Object.fromEntries(WIKITEXT_SPLITS.map((s) => [s, checksumOf(fake[s])])) as Record<WikitextSplit, FileChecksum>

/** A fetch that serves `files` by URL and records what was requested. */
const fakeFetch =
  (files: Record<string, string>, requested: string[] = []): FetchLike =>
  async (url) => {
    requested.push(url)
    const body = files[url]
    return body === undefined
      ? { ok: false, status: 404, statusText: 'Not Found', arrayBuffer: async () => new ArrayBuffer(0) }
      : { ok: true, status: 200, arrayBuffer: async () => new Uint8Array(Buffer.from(body, 'utf8')).buffer }
  }
const servedFake = Object.fromEntries(WIKITEXT_SPLITS.map((s) => [wikitextUrl(s), fake[s]]))
const noFetch: FetchLike = async () => {
  throw new Error('network must not be used in this test')
}

describe('resolveWikitextDir', () => {
  it('accepts --data-dir holding wikitext-2/ or the files directly', async () => {
    const root = tempDir()
    writeSplits(join(root, 'wikitext-2'))
    expect(await resolveWikitextDir({ dataDir: root, env: {}, fetch: noFetch })).toBe(join(root, 'wikitext-2'))
    const flat = tempDir()
    writeSplits(flat)
    expect(await resolveWikitextDir({ dataDir: flat, env: {}, fetch: noFetch })).toBe(flat)
    expect(await loadWikitext(root)).toEqual(fake)
  })

  it('prefers --data-dir over MOAS_DATA_DIR over the cache', async () => {
    const [a, b, cache] = [tempDir(), tempDir(), tempDir()]
    for (const d of [a, b]) writeSplits(d)
    writeSplits(join(cache, 'wikitext-2'))
    const opts = { cacheDir: cache, fetch: noFetch }
    expect(await resolveWikitextDir({ ...opts, dataDir: a, env: { MOAS_DATA_DIR: b } })).toBe(a)
    expect(await resolveWikitextDir({ ...opts, env: { MOAS_DATA_DIR: b } })).toBe(b)
    expect(await resolveWikitextDir({ ...opts, env: {} })).toBe(join(cache, 'wikitext-2'))
    const xdg = tempDir() // the default cache is $XDG_CACHE_HOME/moas
    writeSplits(join(xdg, 'moas', 'wikitext-2'))
    expect(await resolveWikitextDir({ fetch: noFetch, env: { XDG_CACHE_HOME: xdg } })).toBe(join(xdg, 'moas', 'wikitext-2'))
  })

  it('fails clearly when an explicit folder lacks the files', async () => {
    const empty = tempDir()
    await expect(resolveWikitextDir({ dataDir: empty, env: {}, fetch: noFetch })).rejects.toThrow(/--data-dir folder/)
    await expect(resolveWikitextDir({ env: { MOAS_DATA_DIR: empty }, fetch: noFetch })).rejects.toThrow(/MOAS_DATA_DIR folder/)
  })

  it('explains where it looked and how to supply the files when downloads are off', async () => {
    const cache = tempDir()
    const err = await resolveWikitextDir({ env: {}, cacheDir: cache, download: false, fetch: noFetch }).catch((e) => e)
    expect(err).toBeInstanceOf(DataError)
    expect(err.message).toContain(join(cache, 'wikitext-2'))
    expect(err.message).toContain('--data-dir DIR')
    expect(err.message).toContain('MOAS_DATA_DIR')
    expect(err.message).toContain('wikitext-2/train.txt')
    expect(err.message).toContain('https://raw.githubusercontent.com/pytorch/examples/main/word_language_model/data/wikitext-2/<split>.txt')
  })

  it('downloads missing files into the cache, verified', async () => {
    const cache = tempDir()
    writeSplits(join(cache, 'wikitext-2'))
    rmSync(join(cache, 'wikitext-2', 'valid.txt'))
    rmSync(join(cache, 'wikitext-2', 'test.txt'))
    const requested: string[] = []
    const dir = await resolveWikitextDir({ env: {}, cacheDir: cache, fetch: fakeFetch(servedFake, requested), checksums: fakeChecksums })
    expect(requested).toEqual([wikitextUrl('valid'), wikitextUrl('test')]) // only what was missing
    expect(await loadWikitext(dir)).toEqual(fake)
    expect(readdirSync(dir).sort()).toEqual(['test.txt', 'train.txt', 'valid.txt']) // no temp files left
  })

  it('discards a download whose sha256 does not match', async () => {
    const cache = tempDir()
    const tampered = { ...servedFake, [wikitextUrl('valid')]: 'valid texT\n' } // same size, other bytes
    const err = await resolveWikitextDir({ env: {}, cacheDir: cache, fetch: fakeFetch(tampered), checksums: fakeChecksums }).catch((e) => e)
    expect(err).toBeInstanceOf(DataError)
    expect(err.message).toMatch(/does not match.*sha256/)
    expect(readdirSync(join(cache, 'wikitext-2'))).toEqual(['train.txt']) // valid.txt neither kept nor left as temp
  })

  it('checks downloads against the real WikiText-2 checksums by default', async () => {
    const err = await resolveWikitextDir({ env: {}, cacheDir: tempDir(), fetch: fakeFetch(servedFake) }).catch((e) => e)
    expect(err.message).toContain(WIKITEXT_CHECKSUMS.train.sha256)
  })

  it('reports network failures and HTTP errors with how to supply the files', async () => {
    const offline: FetchLike = async () => {
      throw new TypeError('fetch failed', { cause: new Error('getaddrinfo ENOTFOUND raw.githubusercontent.com') })
    }
    const err = await resolveWikitextDir({ env: {}, cacheDir: tempDir(), fetch: offline }).catch((e) => e)
    expect(err).toBeInstanceOf(DataError)
    expect(err.message).toContain('could not download')
    expect(err.message).toContain('ENOTFOUND')
    expect(err.message).toContain('--data-dir DIR')
    await expect(resolveWikitextDir({ env: {}, cacheDir: tempDir(), fetch: fakeFetch({}) })).rejects.toThrow(/HTTP 404 Not Found/)
  })
})

describe('paperSplit', () => {
  it('splits at int(n*0.9) characters like Python', () => {
    expect(paperSplit('abcdefghij')).toEqual({ train: 'abcdefghi', val: 'j' })
    expect(paperSplit('abcdefghijklmnopqrs')).toEqual({ train: 'abcdefghijklmnopq', val: 'rs' }) // int(17.1) = 17
    expect(paperSplit('')).toEqual({ train: '', val: '' })
  })

  it('counts astral characters as one character', () => {
    const text = `${'😀'.repeat(9)}ab` // 11 code points, int(9.9) = 9
    expect(paperSplit(text)).toEqual({ train: '😀'.repeat(9), val: 'ab' })
  })
})

const dataDir = process.env.MOAS_DATA_DIR
describe('real WikiText-2', () => {
  const title = dataDir
    ? 'has the known files and character statistics'
    : 'has the known files and character statistics — SKIPPED: MOAS_DATA_DIR is unset (set it to a folder holding wikitext-2/)'
  it.skipIf(!dataDir)(title, async () => {
    const dir = await resolveWikitextDir({ dataDir, download: false })
    for (const s of WIKITEXT_SPLITS) {
      const bytes = readFileSync(join(dir, `${s}.txt`))
      expect({ sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length }).toEqual(WIKITEXT_CHECKSUMS[s])
    }
    const { train } = await loadWikitext(dir)
    expect(train.length).toBe(10_780_437)
    const tok = CharTokenizer.fromText(train)
    expect(tok.vocabSize).toBe(283)
    const ids = tok.encode(train)
    expect(ids.length).toBe(10_780_437)
    expect(tok.decode(ids.subarray(0, 1000))).toBe(train.slice(0, 1000))
    const { train: tr, val } = paperSplit(train)
    expect(tr.length).toBe(9_702_393) // int(10780437 * 0.9)
    expect(tr + val).toBe(train)
  })
})
