/**
 * The cache of a variant that routes what each token caches (moas-kv): per layer, per level and per batch
 * row, the heads of exactly the tokens that chose that level. Layout of one (layer, level, row) buffer:
 * [level heads, capacity, d] for keys and the same for values, the first `n` positions of each head held;
 * a run is fed each level padded to the batch's largest count with a validity mask (rows of a batch chose
 * levels differently, so their counts differ). The order of entries does not matter: every held entry
 * precedes every new position, and attention does not depend on the order of its keys.
 */
import { DECODER_IO, type GptConfig } from '@moas/gpt'
import { type HostTensor, hostTensor } from '@moas/tensor-core'
import { InferenceError } from './errors'

interface RowBuffer {
  key: Float32Array
  value: Float32Array
  /** Held entries. */
  n: number
  capacity: number
}

const GROWTH = 64

export class LevelCacheStore {
  private readonly rows: RowBuffer[][][] // [layer][level][row]
  private readonly d: number

  constructor(
    readonly config: GptConfig,
    readonly batch: number,
  ) {
    if (!config.kv_levels) throw new InferenceError(`a level cache is for variants that route what each token caches (moas-kv), not '${config.attention}'`)
    this.d = config.n_embd / config.n_head
    this.rows = Array.from({ length: config.n_layer }, () =>
      config.kv_levels!.map(() => Array.from({ length: batch }, () => ({ key: new Float32Array(0), value: new Float32Array(0), n: 0, capacity: 0 }))),
    )
  }

  /** Entries held per layer and level, summed over rows. */
  get held(): number[][] {
    return this.rows.map((levels) => levels.map((rows) => rows.reduce((n, r) => n + r.n, 0)))
  }

  /** Bytes the held entries occupy (keys and values, float32): Σ over entries of their level's heads · d · 4 · 2. */
  get bytes(): number {
    const levels = this.config.kv_levels!
    return this.held.reduce((sum, layer) => sum + layer.reduce((s, n, j) => s + n * levels[j] * this.d * 4 * 2, 0), 0)
  }

  /** The feeds of the next run: every (layer, level) padded to the batch's largest count, with its validity. */
  feeds(): Record<string, HostTensor> {
    const out: Record<string, HostTensor> = {}
    const d = this.d
    this.rows.forEach((levels, i) =>
      levels.forEach((rows, j) => {
        const G = this.config.kv_levels![j]
        const P = Math.max(0, ...rows.map((r) => r.n))
        const B = rows.length
        const key = new Float32Array(B * G * P * d)
        const value = new Float32Array(B * G * P * d)
        const valid = new Uint8Array(B * P)
        rows.forEach((r, b) => {
          for (let g = 0; g < G; g++) {
            key.set(r.key.subarray(g * r.capacity * d, (g * r.capacity + r.n) * d), (b * G + g) * P * d)
            value.set(r.value.subarray(g * r.capacity * d, (g * r.capacity + r.n) * d), (b * G + g) * P * d)
          }
          valid.fill(1, b * P, b * P + r.n)
        })
        out[DECODER_IO.pastLevelKey(i, j)] = hostTensor('float32', [B, G, P, d], key)
        out[DECODER_IO.pastLevelValue(i, j)] = hostTensor('float32', [B, G, P, d], value)
        out[DECODER_IO.pastLevelValid(i, j)] = hostTensor('bool', [B, P], valid)
      }),
    )
    return out
  }

  /**
   * Keep what the run's new positions wrote: for each real (not padding) position of each row, its heads at
   * the level it chose (chosen.{i}), taken from new_levels.{i}.{j} [B, level heads, T, d].
   */
  append(out: Record<string, HostTensor>, valid: readonly (readonly number[])[]): void {
    const d = this.d
    this.rows.forEach((levels, i) => {
      const chosen = out[DECODER_IO.chosen(i)].data as BigInt64Array // [B, T, 1]
      const T = valid[0].length
      levels.forEach((rows, j) => {
        const G = this.config.kv_levels![j]
        const keys = out[DECODER_IO.newLevelKey(i, j)].data as Float32Array
        const values = out[DECODER_IO.newLevelValue(i, j)].data as Float32Array
        rows.forEach((r, b) => {
          for (let t = 0; t < T; t++) {
            if (!valid[b][t] || Number(chosen[b * T + t]) !== j) continue
            if (r.n === r.capacity) grow(r, G, d)
            for (let g = 0; g < G; g++) {
              const from = ((b * G + g) * T + t) * d
              r.key.set(keys.subarray(from, from + d), (g * r.capacity + r.n) * d)
              r.value.set(values.subarray(from, from + d), (g * r.capacity + r.n) * d)
            }
            r.n++
          }
        })
      })
    })
  }
}

function grow(r: RowBuffer, G: number, d: number): void {
  const capacity = r.capacity + GROWTH
  const move = (old: Float32Array) => {
    const next = new Float32Array(G * capacity * d)
    for (let g = 0; g < G; g++) next.set(old.subarray(g * r.capacity * d, (g * r.capacity + r.n) * d), g * capacity * d)
    return next
  }
  r.key = move(r.key)
  r.value = move(r.value)
  r.capacity = capacity
}
