/**
 * The KV cache of one layer inside a decoder graph. A layer's cache is one pair of tensors
 * `[B, kvHeads, P, d]` (the past) and `[B, kvHeads, P + T, d]` (the present), whatever the layer holds:
 * a plain scheme's G heads, the MoAS branches' H + G + 1 heads concatenated in branch order, GQE's G heads
 * (+ 1 for a shared head with its own K/V). Each attention call of the layer takes the next `G` heads in
 * the order it is built, so the head order of the cache is the build order, documented by the model.
 */
import { GraphError, type Tensor, ops } from '@moas/tensor-core'

export class LayerKvCache {
  private taken = 0
  private readonly keys: Tensor[] = []
  private readonly values: Tensor[] = []
  private readonly newKeys: Tensor[] = []
  private readonly newValues: Tensor[] = []

  /**
   * @param pastKey, pastValue [B, kvHeads, P, d], the graph inputs of this layer's past
   * @param mask the additive visibility mask [B, 1, 1, T, P + T] shared by every layer (visibilityMask)
   * @param querySlots int64 [1 or B, T]: the cache slot of each new position (P + t), for callers that
   *   gather a subset of the queries (routed top-k) and build their own mask
   * @param keyValid bool [B, P + T]: attention_mask != 0
   * @param causalSuffix the graph takes no padding (attention_mask all ones): the mask then says only
   *   that the new positions follow the past causally, which memory-efficient kernels exploit
   */
  constructor(
    readonly pastKey: Tensor,
    readonly pastValue: Tensor,
    readonly mask: Tensor,
    readonly querySlots: Tensor,
    readonly keyValid: Tensor,
    readonly causalSuffix = false,
  ) {
    if (pastKey.rank !== 4 || typeof pastKey.shape[1] !== 'number') throw new GraphError(`LayerKvCache: past keys must be [B, kvHeads, P, d], got ${pastKey.describe()}`)
  }

  /** What the attention core needs to know of the cache (AttentionCoreOptions' mask and causalSuffix). */
  get coreOptions(): { mask: Tensor; causalSuffix: boolean } {
    return { mask: this.mask, causalSuffix: this.causalSuffix }
  }

  get heads(): number {
    return this.pastKey.shape[1] as number
  }

  /**
   * Prepend this call's share of the past to its new keys and values [B, G, T, d]: returns
   * [B, G, P + T, d] each, and records them as part of the present.
   */
  extend(k: Tensor, v: Tensor): { keys: Tensor; values: Tensor } {
    const G = k.shape[1] as number
    if (this.taken + G > this.heads) throw new GraphError(`LayerKvCache: the layer's cache holds ${this.heads} KV heads; this call needs heads ${this.taken}..${this.taken + G - 1}`)
    const range = (t: Tensor) => (G === this.heads ? t : ops.slice(t, [this.taken], [this.taken + G], [1]))
    const keys = ops.concat([range(this.pastKey), k], 2)
    const values = ops.concat([range(this.pastValue), v], 2)
    this.taken += G
    this.keys.push(keys)
    this.values.push(values)
    this.newKeys.push(k)
    this.newValues.push(v)
    return { keys, values }
  }

  /** The layer's present key and value [B, kvHeads, P + T, d]; every head must have been taken. */
  present(): { key: Tensor; value: Tensor } {
    this.checkTaken()
    return { key: ops.concat(this.keys, 1), value: ops.concat(this.values, 1) }
  }

  /** Only this run's new keys and values [B, kvHeads, T, d], in the present's head order. */
  appended(): { key: Tensor; value: Tensor } {
    this.checkTaken()
    const one = (ts: Tensor[]) => (ts.length === 1 ? ts[0] : ops.concat(ts, 1))
    return { key: one(this.newKeys), value: one(this.newValues) }
  }

  private checkTaken(): void {
    if (this.taken !== this.heads) throw new GraphError(`LayerKvCache: the layer's attention took ${this.taken} of its ${this.heads} cached KV heads; the cache layout and the model disagree`)
  }
}
