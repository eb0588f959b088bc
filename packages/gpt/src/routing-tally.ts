/**
 * The one place routing statistics are counted: per layer, the share of positions per choice, the mean
 * gates, their entropy and the MoAS balance measure. The trainer's eval (its log's `routing`) and
 * `moas analyze` / the playground (@moas/inference's routingStats) both count through it.
 */
export class RoutingTally {
  private readonly counts: Float64Array
  private readonly gateSums: Float64Array
  private entropySum = 0
  /** Positions counted so far. */
  positions = 0

  /** `choices`: the routing choices counted (3 for MoAS, a level per moas-kv level, M experts of GQE's group 0). */
  constructor(readonly choices: number) {
    this.counts = new Float64Array(choices)
    this.gateSums = new Float64Array(choices)
  }

  /**
   * One position: `gates[offset .. offset + choices)` are its gates; `choice` what it chose (default: the
   * highest gate, ties to the lower index, as the routers' top-k picks).
   */
  add(gates: ArrayLike<number>, offset = 0, choice?: number): void {
    const S = this.choices
    let best = 0
    let h = 0
    for (let s = 0; s < S; s++) {
      const v = gates[offset + s]
      if (v > gates[offset + best]) best = s
      if (v > 0) h -= v * Math.log(v)
      this.gateSums[s] += v
    }
    this.counts[choice ?? best]++
    this.entropySum += h
    this.positions++
  }

  /** Share per choice of positions whose choices alone are known (e.g. one character class's). */
  static shareOf(picked: readonly number[], choices: number): number[] {
    const counts = new Array(choices).fill(0)
    for (const c of picked) counts[c]++
    return counts.map((c) => (picked.length ? c / picked.length : 0))
  }

  /** Share of positions per choice (zeros before any position). */
  share(): number[] {
    return Array.from(this.counts, (c) => (this.positions ? c / this.positions : 0))
  }

  /** Mean gate per choice over positions. */
  meanGates(): number[] {
    return Array.from(this.gateSums, (g) => (this.positions ? g / this.positions : 0))
  }

  /** Mean entropy of the gates, nats. */
  entropy(): number {
    return this.positions ? this.entropySum / this.positions : 0
  }

  /** The MoAS paper's balance loss of these gates: mean over choices of (mean gate − 1/S)². */
  balance(): number {
    const S = this.choices
    return this.meanGates().reduce((a, m) => a + (m - 1 / S) ** 2, 0) / S
  }
}
