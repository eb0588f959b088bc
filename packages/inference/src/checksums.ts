/**
 * The checksum file of an exported model folder: SHA256SUMS in `sha256sum`'s own format (`HEX  PATH`), so
 * anyone can check a copy with `sha256sum -c SHA256SUMS`; moas checks it on every load. config.json's
 * "moas" key names the file, so deleting it does not switch the check off. Browser-safe: Web Crypto when
 * the page has it (a secure context; ~6× faster than JS), else @noble/hashes, which export also uses to
 * stay synchronous.
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex } from '@noble/hashes/utils.js'

export const CHECKSUM_FILE = 'SHA256SUMS'

const encoder = new TextEncoder()
const asBytes = (data: Uint8Array | string) => (typeof data === 'string' ? encoder.encode(data) : data)

/** SHA256SUMS for every file of an export (sorted by path). */
export function checksumFile(files: Readonly<Record<string, Uint8Array | string>>): string {
  return Object.keys(files)
    .sort()
    .map((path) => `${bytesToHex(sha256(asBytes(files[path])))}  ${path}\n`)
    .join('')
}

/** SHA256SUMS parsed: path → hex digest. Throws a message (the caller names the folder) on a malformed line. */
export function parseChecksumFile(text: string): Map<string, string> {
  const sums = new Map<string, string>()
  for (const [i, line] of text.split('\n').entries()) {
    if (!line.trim()) continue
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line)
    if (!m) throw new Error(`line ${i + 1} is not "SHA256  PATH"`)
    sums.set(m[2], m[1])
  }
  return sums
}

export async function sha256Hex(data: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle
  if (subtle) return bytesToHex(new Uint8Array(await subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>)))
  return bytesToHex(sha256(data))
}
