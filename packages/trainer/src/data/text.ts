/**
 * Bytes → text for everything moas reads as text (data splits, --text, --prompts): strict UTF-8 with the
 * first bad byte named, and no NUL characters, which no text corpus holds but binary files and UTF-16 text
 * (valid UTF-8 byte for byte) do.
 */
import { DataError } from './errors.js'

export function decodeText(bytes: Uint8Array, where: string): string {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    const at = firstInvalidUtf8(bytes)
    const what = at < bytes.length ? `invalid byte 0x${bytes[at].toString(16).padStart(2, '0')} at offset ${at}` : 'an invalid UTF-8 sequence'
    throw new DataError(`${where}: not UTF-8 text (${what}); convert it first, e.g. iconv -f latin1 -t utf-8`)
  }
  const nul = bytes.indexOf(0)
  if (nul >= 0)
    throw new DataError(
      `${where}: holds a NUL byte at offset ${nul}, so it is a binary file or UTF-16 text, not UTF-8 text; give a text file (UTF-16: iconv -f utf-16 -t utf-8)`,
    )
  return text
}

/** Offset of the lead byte of the first sequence that is not valid UTF-8 (for the message). */
function firstInvalidUtf8(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]
    const n = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0
    if (n === 0 || i + n > bytes.length) return i
    for (let j = 1; j < n; j++) if ((bytes[i + j] & 0xc0) !== 0x80) return i
    i += n
  }
  return bytes.length
}
