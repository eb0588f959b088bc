/**
 * One dropout site of the paper config's attention probabilities ([12, 6, 256, 256], p = 0.1), both ways
 * the caller's randomness can reach the graph, timed in the same interleaved rotation:
 * - noise: the caller fills uint16 noise (Xoshiro128.fill) and the graph computes x · Cast(Greater(noise, t − 1));
 * - keep (what tensor-core builds): the caller decides keep in its loop (Xoshiro128.fillKeep) and the graph
 *   computes x · Cast(keep).
 * The two give the same mask from the same generator state (checked here), so the difference is cost only.
 * Then the draw of a whole training step's masks per variant (the trainer's NoiseFeeder on the paper
 * training graph's sites), both layouts interleaved: 'full' (every entry) and 'causal-rows' (causal
 * attention sites draw only each query's visible keys; what the trainer does).
 */
import { buildGpt } from '@moas/gpt'
import type { Provider } from '@moas/tensor-core'
import { Graph, hostTensor, ops, Session } from '@moas/tensor-core'
import { NOISE_LAYOUTS, NoiseFeeder, type NoiseLayout, Xoshiro128 } from '@moas/trainer'
import { paperConfig } from './paper'
import { mdTable } from './report'
import { nowMs, summarize, type Timing } from './stats'

export interface DropoutMaskConfig {
  provider?: Provider
  shape: number[]
  ratio: number
  warmup: number
  reps: number
  threads: number
  /** Variants whose whole-step draw is timed (paper config, batch 12 × 256). */
  variants: string[]
}

export const DROPOUT_MASK_DEFAULTS: Omit<DropoutMaskConfig, 'threads'> = {
  shape: [12, 6, 256, 256],
  ratio: 0.1,
  warmup: 3,
  reps: 11,
  variants: ['mha', 'moas'],
}

/** One training step's masks: what is fed, what each layout draws, and the draw's time. */
export interface StepDrawRow {
  variant: string
  sites: number
  causalSites: number
  /** Mask elements fed per step. */
  elements: number
  drawn: Record<NoiseLayout, number>
  ms: Record<NoiseLayout, Timing>
  /** causal-rows median / full median. */
  ratio: number
}

export interface DropoutMaskResult {
  config: DropoutMaskConfig
  elements: number
  /** ms per site: the caller's draw and the graph's masked multiply, each way. */
  noise: { draw: Timing; graph: Timing; total: number }
  keep: { draw: Timing; graph: Timing; total: number }
  /** noise total / keep total (medians). */
  speedup: number
  step: StepDrawRow[]
}

function maskGraph(shape: number[], threshold: number, fed: 'noise' | 'keep'): Graph {
  const g = new Graph(`dropout-${fed}`)
  const x = g.input('x', 'float32', shape)
  const keep =
    fed === 'noise'
      ? ops.cast(ops.greater(g.input('noise', 'uint16', shape), g.scalar(threshold - 1, 'uint16')), 'float32')
      : ops.cast(g.input('keep', 'bool', shape), 'float32')
  g.output('y', ops.mul(x, keep))
  return g
}

export async function runDropoutMask(cfg: DropoutMaskConfig, progress: (m: string) => void = () => {}): Promise<DropoutMaskResult> {
  const n = cfg.shape.reduce((a, b) => a * b, 1)
  if (n % 4) throw new Error(`dropout-mask: the shape's element count (${n}) must be a multiple of 4`)
  const threshold = Math.round(cfg.ratio * 65536)
  const x = hostTensor('float32', cfg.shape, new Float32Array(n).fill(1.5))
  const words = new Uint32Array(n / 2)
  const keep = new Uint8Array(n)
  // Same state, same decisions: the formulations differ in cost only.
  new Xoshiro128(1).fill(words)
  new Xoshiro128(1).fillKeep(keep, n, threshold)
  const halves = new Uint16Array(words.buffer)
  for (let i = 0; i < n; i++) if ((halves[i] >= threshold ? 1 : 0) !== keep[i]) throw new Error(`dropout-mask: fillKeep disagrees with fill at element ${i}`)

  const opts = { threads: cfg.threads, provider: cfg.provider }
  const sessions = {
    noise: await Session.create(maskGraph(cfg.shape, threshold, 'noise'), opts),
    keep: await Session.create(maskGraph(cfg.shape, threshold, 'keep'), opts),
  }
  const feeds = { noise: { x, noise: hostTensor('uint16', cfg.shape, halves) }, keep: { x, keep: hostTensor('bool', cfg.shape, keep) } }
  const rng = new Xoshiro128(2)
  const samples = { noiseDraw: [] as number[], noiseGraph: [] as number[], keepDraw: [] as number[], keepGraph: [] as number[] }
  for (let r = 0; r < cfg.warmup + cfg.reps; r++) {
    const timed = r >= cfg.warmup
    let t0 = nowMs()
    rng.fill(words)
    let t1 = nowMs()
    await sessions.noise.run(feeds.noise)
    let t2 = nowMs()
    if (timed) {
      samples.noiseDraw.push(t1 - t0)
      samples.noiseGraph.push(t2 - t1)
    }
    t0 = nowMs()
    rng.fillKeep(keep, n, threshold)
    t1 = nowMs()
    await sessions.keep.run(feeds.keep)
    t2 = nowMs()
    if (timed) {
      samples.keepDraw.push(t1 - t0)
      samples.keepGraph.push(t2 - t1)
    }
    progress(`${timed ? 'rep' : 'warmup'} ${timed ? r - cfg.warmup + 1 : r + 1}/${timed ? cfg.reps : cfg.warmup}`)
  }
  await sessions.noise.release()
  await sessions.keep.release()
  const side = (draw: number[], graph: number[]) => {
    const d = summarize(draw),
      g = summarize(graph)
    return { draw: d, graph: g, total: d.median + g.median }
  }
  const noise = side(samples.noiseDraw, samples.noiseGraph)
  const kept = side(samples.keepDraw, samples.keepGraph)
  const step = cfg.variants.map((v) => stepDraw(v, cfg, progress))
  return { config: cfg, elements: n, noise, keep: kept, speedup: noise.total / kept.total, step }
}

function stepDraw(variant: string, cfg: DropoutMaskConfig, progress: (m: string) => void): StepDrawRow {
  const g = new Graph(`masks-${variant}`)
  g.dropoutNoise = true
  buildGpt(g, paperConfig(variant), { batch: 12, seq: 256, training: true, withTargets: true })
  const feeders = Object.fromEntries(NOISE_LAYOUTS.map((l) => [l, new NoiseFeeder(g.dropoutMasks, new Xoshiro128(3), l)])) as Record<NoiseLayout, NoiseFeeder>
  const samples = Object.fromEntries(NOISE_LAYOUTS.map((l) => [l, [] as number[]])) as Record<NoiseLayout, number[]>
  for (let r = 0; r < cfg.warmup + cfg.reps; r++) {
    for (const l of NOISE_LAYOUTS) {
      const t0 = nowMs()
      feeders[l].fill()
      if (r >= cfg.warmup) samples[l].push(nowMs() - t0)
    }
    progress(`${variant} step masks ${r + 1}/${cfg.warmup + cfg.reps}`)
  }
  const ms = Object.fromEntries(NOISE_LAYOUTS.map((l) => [l, summarize(samples[l])])) as Record<NoiseLayout, Timing>
  const drawn = Object.fromEntries(NOISE_LAYOUTS.map((l) => [l, feeders[l].drawn])) as Record<NoiseLayout, number>
  return {
    variant,
    sites: g.dropoutMasks.length,
    causalSites: g.dropoutMasks.filter((m) => m.causal).length,
    elements: feeders.full.size,
    drawn,
    ms,
    ratio: ms['causal-rows'].median / ms.full.median,
  }
}

const stepRows = (r: DropoutMaskResult) =>
  r.step.map((s) => [
    s.variant,
    `${s.sites} (${s.causalSites} causal)`,
    (s.elements / 1e6).toFixed(1),
    (s.drawn['causal-rows'] / 1e6).toFixed(1),
    cell(s.ms.full),
    cell(s.ms['causal-rows']),
    `${s.ratio.toFixed(2)}×`,
  ])
const STEP_HEADER = ['variant', 'sites', 'M elements fed', "M drawn ('causal-rows')", "ms 'full'", "ms 'causal-rows'", 'ratio']

const cell = (t: Timing) => `${t.median.toFixed(2)} (${t.min.toFixed(2)}–${t.max.toFixed(2)})`

export function describeDropoutMask(r: DropoutMaskResult): string {
  const c = r.config
  const row = (label: string, s: DropoutMaskResult['noise']) =>
    `  ${label.padEnd(44)} draw ${cell(s.draw).padStart(20)} ms   graph ${cell(s.graph).padStart(20)} ms   total ${s.total.toFixed(2)} ms`
  return [
    `dropout-mask: one dropout site of [${c.shape.join(', ')}] float32 (${(r.elements / 1e6).toFixed(1)} M elements), p = ${c.ratio}; warmup ${c.warmup}, ${c.reps} interleaved runs; medians (min–max)`,
    row('uint16 noise, graph x·Cast(Greater(noise)):', r.noise),
    row('bool keep drawn in JS, graph x·Cast(keep):', r.keep),
    `  per site: ${r.speedup.toFixed(2)}× faster with the keep mask (${(r.noise.total - r.keep.total).toFixed(2)} ms saved; the same mask either way, checked)`,
    `  a whole paper training step's masks (NoiseFeeder.fill), layouts interleaved; medians (min–max):`,
    `    ${STEP_HEADER.join(' | ')}`,
    ...stepRows(r).map((row) => `    ${row.join(' | ')}`),
  ].join('\n')
}

export function dropoutMaskMarkdown(r: DropoutMaskResult): string {
  const c = r.config
  return [
    `One dropout site of [${c.shape.join(', ')}] float32 (the paper config's attention probabilities, ${(r.elements / 1e6).toFixed(1)} M elements), p = ${c.ratio}; warmup ${c.warmup}, ${c.reps} interleaved runs; ms, median (min–max).`,
    '',
    mdTable(
      ['fed to the graph', 'caller draws (JS)', 'graph runs', 'total'],
      [
        ['uint16 noise; graph x · Cast(Greater(noise, t − 1))', cell(r.noise.draw), cell(r.noise.graph), r.noise.total.toFixed(2)],
        ['bool keep decided in the draw; graph x · Cast(keep) (what tensor-core builds)', cell(r.keep.draw), cell(r.keep.graph), r.keep.total.toFixed(2)],
      ],
    ),
    '',
    `Per site the keep mask is **${r.speedup.toFixed(2)}×** faster (${(r.noise.total - r.keep.total).toFixed(2)} ms saved); both give the same mask from the same generator state (checked by the bench).`,
    '',
    `A whole training step's masks at the paper config (batch 12 × 256; the trainer's NoiseFeeder on every dropout site of the training graph), the two layouts interleaved, warmup ${c.warmup}, ${c.reps} runs; ms, median (min–max). 'full' draws every entry (trainer states of version 1); 'causal-rows' (what the trainer does) draws only each query's visible keys at causal attention sites, whose entries above the diagonal multiply probabilities that are exactly 0:`,
    '',
    mdTable(STEP_HEADER, stepRows(r)),
  ].join('\n')
}
