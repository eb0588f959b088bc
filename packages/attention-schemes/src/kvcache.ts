/**
 * The KV cache of one layer inside a decoder graph. A layer's cache is one pair of tensors
 * `[B, kvHeads, P, d]` (the past) and `[B, kvHeads, P + T, d]` (the present), whatever the layer holds:
 * a plain scheme's G heads, the MoAS branches' H + G + 1 heads concatenated in branch order, GQE's G heads
 * (+ 1 for a shared head with its own K/V). Each attention call of the layer takes the next `G` heads in
 * the order it is built, so the head order of the cache is the build order, documented by the model.
 */
import { GraphError, ops, type Tensor } from '@moas/tensor-core'
import type { CachePast } from './attention'

/** One attention call's share of a layer's cache: its new keys and values, its heads of the past, and the join of the two if a kernel made one. */
interface CacheCall {
  k: Tensor
  v: Tensor
  pastKey: Tensor
  pastValue: Tensor
  joined?: { k: Tensor; v: Tensor }
}

export class LayerKvCache {
  private taken = 0
  private readonly calls: CacheCall[] = []

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
    if (pastKey.rank !== 4 || typeof pastKey.shape[1] !== 'number')
      throw new GraphError(`LayerKvCache: past keys must be [B, kvHeads, P, d], got ${pastKey.describe()}`)
  }

  /** What the attention core needs to know of the cache (AttentionCoreOptions' mask and causalSuffix). */
  get coreOptions(): { mask: Tensor; causalSuffix: boolean } {
    return { mask: this.mask, causalSuffix: this.causalSuffix }
  }

  get heads(): number {
    return this.pastKey.shape[1] as number
  }

  /**
   * Take the layer's next G cached heads for one attention call whose new keys and values are k, v
   * [B, G, T, d]: records them as part of the present and returns the call's core options, with `past`
   * its heads' cached keys and values [B, G, 1, P, d]. The past stays apart: GroupQueryAttention takes
   * it as its own input, and a kernel that reads the keys whole joins them once (`past.join`, which the
   * present then reuses). Joining past and new for every call, and splitting them again for
   * GroupQueryAttention, copied the whole cache three times per decode step.
   */
  extend(k: Tensor, v: Tensor): { mask: Tensor; causalSuffix: boolean; past: CachePast } {
    const G = k.shape[1] as number
    if (this.taken + G > this.heads)
      throw new GraphError(`LayerKvCache: the layer's cache holds ${this.heads} KV heads; this call needs heads ${this.taken}..${this.taken + G - 1}`)
    const range = (t: Tensor) => (G === this.heads ? t : ops.slice(t, [this.taken], [this.taken + G], [1]))
    const call: CacheCall = { k, v, pastKey: range(this.pastKey), pastValue: range(this.pastValue) }
    this.taken += G
    this.calls.push(call)
    const [key, value] = [ops.unsqueeze(call.pastKey, [2]), ops.unsqueeze(call.pastValue, [2])]
    const join = (kg: Tensor, vg: Tensor) => (call.joined ??= { k: ops.concat([key, kg], 3), v: ops.concat([value, vg], 3) })
    return { ...this.coreOptions, past: { key, value, join } }
  }

  /**
   * The layer's present key and value [B, kvHeads, P + T, d]; every head must have been taken. Built
   * from the calls' joins where kernels made them (no second copy), else as past ++ added.
   */
  present(): { key: Tensor; value: Tensor } {
    if (!this.calls.some((c) => c.joined)) {
      const added = this.appended()
      return { key: ops.concat([this.pastKey, added.key], 2), value: ops.concat([this.pastValue, added.value], 2) }
    }
    this.checkTaken()
    const whole = (c: CacheCall, which: 'k' | 'v') =>
      c.joined ? ops.squeeze(c.joined[which], [2]) : ops.concat([which === 'k' ? c.pastKey : c.pastValue, c[which]], 2)
    return { key: heads(this.calls.map((c) => whole(c, 'k'))), value: heads(this.calls.map((c) => whole(c, 'v'))) }
  }

  /** Only this run's new keys and values [B, kvHeads, T, d], in the present's head order. */
  appended(): { key: Tensor; value: Tensor } {
    this.checkTaken()
    return { key: heads(this.calls.map((c) => c.k)), value: heads(this.calls.map((c) => c.v)) }
  }

  private checkTaken(): void {
    if (this.taken !== this.heads)
      throw new GraphError(
        `LayerKvCache: the layer's attention took ${this.taken} of its ${this.heads} cached KV heads; the cache layout and the model disagree`,
      )
  }
}

/** The calls' heads side by side [B, kvHeads, ·, d]. */
const heads = (ts: Tensor[]) => (ts.length === 1 ? ts[0] : ops.concat(ts, 1))
