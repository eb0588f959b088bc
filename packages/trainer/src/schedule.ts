/**
 * Learning-rate schedules. A schedule is a pure function of the update index, so resuming only needs the
 * step counter: no scheduler state can drift between an interrupted and an uninterrupted run.
 */
export type LrSchedule =
  | { kind: 'constant'; lr: number }
  /** Linear warmup from lr/warmup to lr over `warmup` updates, then cosine decay to `minLr` at `decaySteps`. */
  | { kind: 'cosine'; lr: number; warmup: number; decaySteps: number; minLr: number }

export const SCHEDULES = ['constant', 'cosine'] as const

/** Learning rate of update `step` (0-based: the first update uses lrAt(s, 0)). */
export function lrAt(schedule: LrSchedule, step: number): number {
  if (schedule.kind === 'constant') return schedule.lr
  const { lr, warmup, decaySteps, minLr } = schedule
  if (step < warmup) return (lr * (step + 1)) / warmup
  if (step >= decaySteps) return minLr
  const progress = (step - warmup) / Math.max(1, decaySteps - warmup)
  return minLr + 0.5 * (lr - minLr) * (1 + Math.cos(Math.PI * progress))
}
