import { createHash, randomBytes } from 'node:crypto'
import { statSync } from 'node:fs'
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { DataError } from './errors.js'
import { decodeText } from './text.js'

/**
 * WikiText-2, word-tokenized (with `<unk>` and ` @-@ `), as shipped in pytorch/examples — the files the
 * MoAS paper's code trains on (character-level).
 */
export const WIKITEXT_SPLITS = ['train', 'valid', 'test'] as const
export type WikitextSplit = (typeof WIKITEXT_SPLITS)[number]
export type WikitextSplits = Record<WikitextSplit, string>

export interface FileChecksum {
  sha256: string
  bytes: number
}

export const WIKITEXT_CHECKSUMS: Readonly<Record<WikitextSplit, FileChecksum>> = {
  train: { sha256: '9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f', bytes: 10_797_148 },
  valid: { sha256: 'f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8', bytes: 1_121_681 },
  test: { sha256: 'd790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0', bytes: 1_256_449 },
}

export const WIKITEXT_BASE_URL = 'https://raw.githubusercontent.com/pytorch/examples/main/word_language_model/data/wikitext-2'

export const wikitextUrl = (split: WikitextSplit, baseUrl = WIKITEXT_BASE_URL): string => `${baseUrl}/${split}.txt`

/** The subset of `fetch` we use; injectable so tests can simulate downloads without a network. */
export type FetchLike = (url: string) => Promise<{
  ok: boolean
  status: number
  statusText?: string
  arrayBuffer(): Promise<ArrayBuffer>
}>

export interface ResolveWikitextOptions {
  /** `--data-dir`: a folder holding `wikitext-2/{train,valid,test}.txt`, or the three files directly. */
  dataDir?: string
  /** Environment to read MOAS_DATA_DIR, XDG_CACHE_HOME and HOME from (default: process.env). */
  env?: Record<string, string | undefined>
  /** The moas cache folder (default `$XDG_CACHE_HOME/moas` or `~/.cache/moas`); files go in `wikitext-2/`. */
  cacheDir?: string
  /** Download missing files into the cache (default true). */
  download?: boolean
  /** Default: the global fetch. */
  fetch?: FetchLike
  /** Expected checksums of downloaded files (default WIKITEXT_CHECKSUMS; overridable for tests and mirrors). */
  checksums?: Readonly<Record<WikitextSplit, FileChecksum>>
  /** Where to download from (default WIKITEXT_BASE_URL). */
  baseUrl?: string
}

const isFile = (p: string): boolean => statSync(p, { throwIfNoEntry: false })?.isFile() ?? false
const missingIn = (dir: string): WikitextSplit[] => WIKITEXT_SPLITS.filter((s) => !isFile(join(dir, `${s}.txt`)))

/** The folder that holds the three split files: `dir/wikitext-2` or `dir` itself; null if neither does. */
export function findWikitextFiles(dir: string): string | null {
  for (const d of [join(dir, 'wikitext-2'), dir]) if (missingIn(d).length === 0) return resolve(d)
  return null
}

export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  return env.XDG_CACHE_HOME ? join(env.XDG_CACHE_HOME, 'moas') : join(env.HOME || homedir(), '.cache', 'moas')
}

function howToSupply(cacheFolder: string, baseUrl: string): string {
  return (
    `\nTo supply WikiText-2, either\n` +
    `  - pass --data-dir DIR or set MOAS_DATA_DIR=DIR, where DIR holds wikitext-2/train.txt, ` +
    `wikitext-2/valid.txt and wikitext-2/test.txt (a folder holding the three files directly also works), or\n` +
    `  - allow the download (needs network) into ${cacheFolder}, or put the files there yourself; they come from\n` +
    `    ${baseUrl}/<split>.txt  (<split> = train, valid, test)`
  )
}

/**
 * Find (or download) WikiText-2 and return the folder holding `{train,valid,test}.txt`.
 *
 * Order: `dataDir`, then `MOAS_DATA_DIR`, then the cache. An explicitly given folder (dataDir or
 * MOAS_DATA_DIR) is authoritative: if it lacks the files we fail instead of silently using or downloading
 * another copy, so a typo never trains on data the user did not point at. User-supplied files are not
 * checksummed (they may be deliberate variants); downloaded files are, before they enter the cache.
 */
export async function resolveWikitextDir(options: ResolveWikitextOptions = {}): Promise<string> {
  const env = options.env ?? process.env
  const baseUrl = options.baseUrl ?? WIKITEXT_BASE_URL
  const cacheFolder = join(options.cacheDir ?? defaultCacheDir(env), 'wikitext-2')

  const explicit = options.dataDir
    ? { source: '--data-dir', dir: options.dataDir }
    : env.MOAS_DATA_DIR
      ? { source: 'MOAS_DATA_DIR', dir: env.MOAS_DATA_DIR }
      : null
  if (explicit) {
    const found = findWikitextFiles(explicit.dir)
    if (found) return found
    const dir = resolve(explicit.dir)
    throw new DataError(
      `WikiText-2 not found in the ${explicit.source} folder ${dir}: looked for ` +
        `${join(dir, 'wikitext-2')}/{train,valid,test}.txt and ${dir}/{train,valid,test}.txt.` +
        howToSupply(cacheFolder, baseUrl),
    )
  }

  const missing = missingIn(cacheFolder)
  if (missing.length === 0) return resolve(cacheFolder)
  if (options.download === false) {
    throw new DataError(
      `WikiText-2 not found: no --data-dir given, MOAS_DATA_DIR unset, and the cache ${cacheFolder} lacks ` +
        `${missing.map((s) => `${s}.txt`).join(', ')}; downloads are disabled.` +
        howToSupply(cacheFolder, baseUrl),
    )
  }
  const fetchFn = options.fetch ?? (globalThis.fetch as FetchLike | undefined)
  if (!fetchFn) throw new DataError(`no fetch available to download WikiText-2.${howToSupply(cacheFolder, baseUrl)}`)
  await mkdir(cacheFolder, { recursive: true })
  // Only the missing splits: an interrupted earlier download keeps the files it completed.
  for (const split of missing) {
    const url = wikitextUrl(split, baseUrl)
    const expected = (options.checksums ?? WIKITEXT_CHECKSUMS)[split]
    await downloadVerified(url, join(cacheFolder, `${split}.txt`), expected, fetchFn, howToSupply(cacheFolder, baseUrl))
  }
  return resolve(cacheFolder)
}

/**
 * Download `url` to `dest`: write a uniquely named temp file beside it, verify size and sha256, then
 * rename (atomic on one filesystem), so `dest` is either absent or complete and correct — never partial,
 * even with concurrent runs or a crash mid-download.
 */
async function downloadVerified(url: string, dest: string, expected: FileChecksum, fetchFn: FetchLike, help: string) {
  let bytes: Uint8Array
  try {
    const res = await fetchFn(url)
    if (!res.ok) throw new Error(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`)
    bytes = new Uint8Array(await res.arrayBuffer())
  } catch (e) {
    throw new DataError(`could not download ${url}: ${errorText(e)}.${help}`)
  }
  const tmp = `${dest}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  try {
    await writeFile(tmp, bytes)
    const sha256 = createHash('sha256')
      .update(await readFile(tmp))
      .digest('hex')
    if (sha256 !== expected.sha256 || bytes.length !== expected.bytes) {
      throw new DataError(
        `downloaded ${url} does not match the expected file: got ${bytes.length} bytes, sha256 ${sha256}; ` +
          `expected ${expected.bytes} bytes, sha256 ${expected.sha256}. The file was discarded; retry, or ` +
          `supply a copy yourself.` +
          help,
      )
    }
    await rename(tmp, dest)
  } catch (e) {
    await unlink(tmp).catch(() => {}) // best effort: the temp file may not exist
    throw e
  }
}

/** An error's message plus its cause (Node's fetch reports "fetch failed" with the real reason as cause). */
function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e)
  const cause = e.cause instanceof Error ? ` (${e.cause.message})` : ''
  return e.message + cause
}

/** Read the three splits (UTF-8) from a folder as returned by resolveWikitextDir (or its parent). */
export async function loadWikitext(dir: string): Promise<WikitextSplits> {
  const d = findWikitextFiles(dir)
  if (!d) throw new DataError(`${resolve(dir)} holds neither wikitext-2/{train,valid,test}.txt nor {train,valid,test}.txt`)
  const [train, valid, test] = await Promise.all(WIKITEXT_SPLITS.map(async (s) => decodeText(await readFile(join(d, `${s}.txt`)), join(d, `${s}.txt`))))
  return { train, valid, test }
}
