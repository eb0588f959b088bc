/**
 * The paper's split of one text: `train = data[:int(n*0.9)]`, `val = data[int(n*0.9):]`, where n counts
 * characters as Python does (code points, not UTF-16 units). `Math.trunc(n * 0.9)` is Python's
 * `int(n*0.9)`: the same double-precision product, truncated.
 */
export function paperSplit(text: string): { train: string; val: string } {
  const cut = codeUnitIndex(text, Math.trunc(countCodePoints(text) * 0.9))
  return { train: text.slice(0, cut), val: text.slice(cut) }
}

const SURROGATE = /[\uD800-\uDFFF]/

function countCodePoints(text: string): number {
  if (!SURROGATE.test(text)) return text.length // fast path: BMP only, one unit per character
  let n = 0
  for (const _ of text) n++
  return n
}

/** UTF-16 offset of the k-th code point. */
function codeUnitIndex(text: string, k: number): number {
  if (!SURROGATE.test(text)) return k
  let i = 0
  for (const ch of text) {
    if (k-- === 0) break
    i += ch.length
  }
  return i
}
