/**
 * Where the routers send tokens: the gates and choices of a routing decoder session per position and layer,
 * and statistics over a text (share per scheme or expert, gate entropy, by character class and by position
 * in the line, a balance measure). `moas analyze` renders them as a report; the browser playground's routing
 * view colours characters with the same choices.
 */

import type { CharTokenizer } from '@moas/gpt'
import { choiceLabels, DECODER_IO, type GptConfig, isRouted, RoutingTally, routingGroups, VARIANTS } from '@moas/gpt'
import { float16Values, type HostTensor } from '@moas/tensor-core'
import type { DecoderSession, DecoderStep } from './decoder'
import { InferenceError } from './errors'

/** The router's decision at one position and layer. */
export interface RoutingChoice {
  /** Softmax gates: 3 for MoAS (MHA, GQA, MQA); G·M for GQE (M experts in each of G groups). */
  gates: number[]
  /** The scheme with the highest gate (MoAS), the first chosen branch (moas-topk), or group 0's first expert (GQE). */
  choice: number
  /** GQE: the first expert chosen in each group. */
  perGroup?: number[]
}

export { choiceLabels }

const numbers = (t: HostTensor): number[] =>
  Array.from(t.dtype === 'float16' ? float16Values(t.data as Uint16Array) : (t.data as ArrayLike<number | bigint>), Number)

/** Per position (batch row `row`), per layer: the gates and choice of one decoder run of a routing session. */
export function routingChoices(run: DecoderStep, cfg: GptConfig, row = 0): RoutingChoice[][] {
  const out: RoutingChoice[][] = Array.from({ length: run.length }, () => [])
  const groups = routingGroups(cfg) || 1
  for (let layer = 0; layer < cfg.n_layer; layer++) {
    const gates = run.routing[DECODER_IO.gates(layer)]
    if (!gates) continue
    const chosen = run.routing[DECODER_IO.chosen(layer)]
    const g = numbers(gates)
    const c = chosen ? numbers(chosen) : null
    const B = gates.shape[0]
    const perPos = g.length / B / run.length
    const k = c ? c.length / B / run.length / groups : 0
    for (let t = 0; t < run.length; t++) {
      const at = row * run.length + t
      const gatesHere = g.slice(at * perPos, (at + 1) * perPos)
      const perGroup = c && groups > 1 ? Array.from({ length: groups }, (_, gi) => c[at * groups * k + gi * k]) : undefined
      out[t].push({ gates: gatesHere, choice: c ? c[at * groups * k] : gatesHere.indexOf(Math.max(...gatesHere)), perGroup })
    }
  }
  return out
}

/**
 * The choices at every character of `text`: windows of block_size characters, each one prefill (a
 * position sees the window before it, not the whole text). The session must return routing outputs.
 */
export async function routeText(session: DecoderSession, tokenizer: CharTokenizer, text: string): Promise<RoutingChoice[][]> {
  const ids = [...tokenizer.encode(text)]
  if (!ids.length) throw new InferenceError('the text has no characters the model knows')
  const T = session.config.block_size
  const out: RoutingChoice[][] = []
  for (let s = 0; s < ids.length; s += T) {
    const run = await session.prefill([ids.slice(s, s + T)])
    const choices = routingChoices(run, session.config)
    if (!choices.length || !choices[0].length)
      throw new InferenceError(`variant '${session.config.attention}' has no router to analyze (routed variants: ${VARIANTS.filter(isRouted).join(', ')})`)
    out.push(...choices)
  }
  return out
}

export const CHAR_CLASSES = ['letter', 'digit', 'space', 'punctuation', 'after newline', 'inside <unk>', 'other'] as const
export type CharClass = (typeof CHAR_CLASSES)[number]

/** The class of the i-th character of `chars` (WikiText-2 marks unknown words as "<unk>"). */
export function charClass(chars: readonly string[], i: number, unk: readonly boolean[]): CharClass {
  if (unk[i]) return 'inside <unk>'
  if (i > 0 && chars[i - 1] === '\n') return 'after newline'
  const ch = chars[i]
  if (/\p{L}/u.test(ch)) return 'letter'
  if (/\p{Nd}/u.test(ch)) return 'digit'
  if (ch === ' ') return 'space'
  if (/[\p{P}\p{S}]/u.test(ch)) return 'punctuation'
  return 'other'
}

export const LINE_BINS = [
  [0, 9],
  [10, 19],
  [20, 39],
  [40, 79],
  [80, Infinity],
] as const

export interface LayerRoutingStats {
  /** Share of positions per choice (scheme or expert), summing to 1. */
  share: number[]
  /** Mean gates over positions (the quantity the MoAS balance loss pulls towards uniform). */
  meanGates: number[]
  /** Mean entropy of the gates, nats (ln 3 = uniform over MoAS's schemes). */
  entropy: number
  /** The MoAS paper's balance loss of these gates: mean over choices of (mean gate − 1/S)². */
  balance: number
  byClass: { cls: CharClass; count: number; share: number[] }[]
  byLinePosition: { bin: string; count: number; share: number[] }[]
  /** GQE: the share of each expert among the first choices of every group. */
  groups?: { group: number; share: number[] }[]
}

export interface RoutingStats {
  labels: string[]
  positions: number
  layers: LayerRoutingStats[]
}

const shareOf = RoutingTally.shareOf

/** Statistics of the choices at every character of `text` (as routeText returns them). */
export function routingStats(cfg: GptConfig, text: string, choices: RoutingChoice[][]): RoutingStats {
  const labels = choiceLabels(cfg)
  const chars = [...text].slice(0, choices.length)
  const unk = new Array(chars.length).fill(false)
  const joined = chars.join('')
  for (let i = joined.indexOf('<unk>'); i >= 0; i = joined.indexOf('<unk>', i + 1)) for (let j = 0; j < 5; j++) unk[[...joined.slice(0, i)].length + j] = true
  const classes = chars.map((_, i) => charClass(chars, i, unk))
  const column: number[] = []
  let col = 0
  for (const ch of chars) {
    column.push(col)
    col = ch === '\n' ? 0 : col + 1
  }
  const S = labels.length
  const layers = (choices[0] ?? []).map((_, layer): LayerRoutingStats => {
    const at = choices.map((c) => c[layer])
    const picked = at.map((c) => c.choice)
    const tally = new RoutingTally(S)
    for (const c of at) tally.add(c.gates, 0, c.choice) // GQE: group 0's experts
    const byClass = CHAR_CLASSES.map((cls) => {
      const sel = picked.filter((_, i) => classes[i] === cls)
      return { cls, count: sel.length, share: shareOf(sel, S) }
    }).filter((c) => c.count > 0)
    const byLinePosition = LINE_BINS.map(([lo, hi]) => {
      const sel = picked.filter((_, i) => column[i] >= lo && column[i] <= hi)
      return { bin: hi === Infinity ? `${lo}+` : `${lo}–${hi}`, count: sel.length, share: shareOf(sel, S) }
    }).filter((b) => b.count > 0)
    const G = at[0]?.perGroup?.length ?? 0
    const groups = G
      ? Array.from({ length: G }, (_, group) => ({
          group,
          share: shareOf(
            at.map((c) => c.perGroup![group]),
            S,
          ),
        }))
      : undefined
    return { share: tally.share(), meanGates: tally.meanGates(), entropy: tally.entropy(), balance: tally.balance(), byClass, byLinePosition, groups }
  })
  return { labels, positions: chars.length, layers }
}
