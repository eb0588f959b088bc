/**
 * The levels a moas-kv study control feeds in place of its router (config kv_route, gpt's KV_ROUTE_LEVELS):
 * - 'random': every position and layer draws its level from that layer's kv_route_shares, independently of
 *   the text. The draw of one batch depends only on (seed, stream, draw index), so a resumed run and every
 *   eval of the same batches see the same levels.
 * - 'rule': by character class, the same for every layer: whitespace and punctuation → the coarsest level,
 *   a word's first letter or digit → the finest, every other character → the middle one. A window's first
 *   position counts as the start of a word (its previous character is not in the batch).
 */
import type { GptConfig } from '@moas/gpt'
import { type HostTensor, mulberry32 } from '@moas/tensor-core'
import { deriveSeed } from './presets'

/** Which draws a filler makes: training batches (by update and micro-batch) or eval batches (by index). */
export type KvRouteStream = 'kv-route' | 'kv-route-eval'

/** Writes the levels of `rows` windows of token ids `x` ([rows, T] row-major) into `out` ([n_layer, rows, T]). */
export type KvRouteFill = (x: BigInt64Array, rows: number, draw: number, out: BigInt64Array) => void

/** What a session needs to feed a control: the config's filler over the tokenizer's characters and the run's seed. */
export interface KvRouteSource {
  /** The tokenizer's characters in id order (the rule's classes). */
  vocab: readonly string[]
  /** The run's seed (the random control's draws). */
  seed: number
}

const WORD = /[\p{L}\p{N}]/u

/** The control's filler for `stream`, or null when the config routes its own levels (or is not moas-kv). */
export function kvRouteFill(cfg: GptConfig, source: KvRouteSource | undefined, stream: KvRouteStream): KvRouteFill | null {
  if (cfg.kv_route === undefined) return null
  if (!source)
    throw new Error(
      `a moas-kv control (kv_route "${cfg.kv_route}") needs its levels fed: pass the tokenizer's vocab and the run's seed (kvRoute) to the session`,
    )
  const nLayer = cfg.n_layer
  if (cfg.kv_route === 'random') {
    const cumulative = cfg.kv_route_shares!.map((row) => row.map((_, i) => row.slice(0, i + 1).reduce((a, b) => a + b, 0)))
    return (x, _rows, draw, out) => {
      const rand = mulberry32(deriveSeed(source.seed, stream, draw))
      const n = x.length
      for (let layer = 0; layer < nLayer; layer++) {
        const cum = cumulative[layer]
        for (let p = 0; p < n; p++) {
          const u = rand()
          let level = 0
          while (level < cum.length - 1 && u >= cum[level]) level++
          out[layer * n + p] = BigInt(level)
        }
      }
    }
  }
  const coarsest = cfg.kv_levels!.length - 1
  const isWord = source.vocab.map((c) => WORD.test(c))
  return (x, rows, _draw, out) => {
    const n = x.length
    const T = n / rows
    for (let p = 0; p < n; p++) {
      const word = isWord[Number(x[p])]
      const start = p % T === 0 || !isWord[Number(x[p - 1])]
      const level = BigInt(!word ? coarsest : start ? 0 : 1)
      for (let layer = 0; layer < nLayer; layer++) out[layer * n + p] = level
    }
  }
}

/** The feed of a control's levels for `rows` windows of `seq` tokens, filled by `fill` (see TrainingSession). */
export function kvRouteFeed(cfg: GptConfig, rows: number, seq: number): HostTensor {
  return { dtype: 'int64', shape: [cfg.n_layer, rows, seq], data: new BigInt64Array(cfg.n_layer * rows * seq) }
}
