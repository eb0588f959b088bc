/**
 * The training loop's core, browser-safe: the sessions of a run and one update at a time — the lr from
 * the schedule, the fused step, the divergence check, the eval every eval_interval updates (and at the
 * last) on eval batches derived from (seed, step). `train()` in `@moas/trainer/node` drives it with
 * checkpoints and a log on disk; the browser playground drives the very same code in a page.
 */
import { variantSpec } from '@moas/gpt'
import type { Provider } from '@moas/tensor-core'
import { BatchSampler } from './data/batches'
import { EvalSession, type RoutingSummary } from './eval-session'
import { initialParams } from './graphs'
import { type NoiseLayout, Xoshiro128 } from './noise'
import { type Dataset, deriveSeed, lrSchedule, type RunConfig } from './presets'
import { type LrSchedule, lrAt } from './schedule'
import { type OptimizerState, TrainingSession } from './training-session'

/** One line of log.jsonl. */
export interface LogRecord {
  /** Updates done (1-based). */
  step: number
  /** Training loss of this update (ce + balance_weight · balance), nats. */
  loss: number
  ce: number
  balance: number
  lr: number
  grad_norm: number
  /** Wall time of the update (batch, noise, forward + backward + AdamW), ms. */
  ms: number
  /** Mean eval-mode loss over eval_iters random val batches (eval updates only). */
  val_loss?: number
  eval_ms?: number
  /** Execution provider the update ran on (cpu, wasm, webgpu, cuda). */
  device?: string
  /** Eval updates of routed variants: per layer, the share of eval positions per scheme/expert and the gate entropy. */
  routing?: RoutingSummary
  /** moas-kv eval updates: the KV bytes per token its choices held, as a fraction of MHA's (mean over layers). */
  kv_fraction?: number
}

/** The `eval_iters` val batches of the eval at `step` (a pure function of seed and step). */
export function evalBatches(run: RunConfig, val: Int32Array, step: number) {
  const sampler = new BatchSampler(val, run.model.block_size, run.batch_size, deriveSeed(run.seed, 'eval', step))
  return Array.from({ length: run.eval_iters }, () => sampler.next())
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits

function optimOf(run: RunConfig) {
  return { beta1: run.beta1, beta2: run.beta2, eps: run.eps, weightDecay: run.weight_decay, clipNorm: run.clip ?? undefined }
}

/** Where a run starts: fresh from its seed, or a saved state (a resume). */
export interface LoopStart {
  params: ReadonlyMap<string, Float32Array>
  optimizer?: OptimizerState
  sampler: BatchSampler
  noise: Xoshiro128
  /** How the noise fills causal attention masks (default 'causal-rows'; a resumed version-1 state: 'full'). */
  noiseLayout?: NoiseLayout
}

/** A fresh run's start: parameters, batch sampler and dropout noise, each from its own seed derived from run.seed. */
export function freshStart(run: RunConfig, data: Dataset): LoopStart {
  return {
    params: initialParams(run.model, deriveSeed(run.seed, 'init')),
    sampler: new BatchSampler(data.train, run.model.block_size, run.batch_size, deriveSeed(run.seed, 'batches')),
    noise: new Xoshiro128(deriveSeed(run.seed, 'noise')),
  }
}

/** A non-finite loss or gradient norm at `record.step` (the record is returned for diagnosis). */
export class DivergedStep extends Error {
  constructor(readonly record: LogRecord) {
    super(`non-finite ${!Number.isFinite(record.loss) ? `loss ${record.loss}` : `gradient norm ${record.grad_norm}`} at step ${record.step}`)
  }
}

export class TrainLoop {
  private readonly schedule: LrSchedule
  private readonly fill: (x: BigInt64Array, y: BigInt64Array) => void

  private constructor(
    readonly run: RunConfig,
    readonly data: Dataset,
    readonly steps: number,
    readonly session: TrainingSession,
    readonly evaluator: EvalSession,
    readonly sampler: BatchSampler,
    readonly device: Provider,
  ) {
    this.schedule = lrSchedule(run, steps)
    this.fill = (x, y) => void sampler.nextInto(x, y)
  }

  /** `stateOnDevice`: see TrainingSessionOptions (default: on for webgpu). */
  static async create(
    run: RunConfig,
    data: Dataset,
    steps: number,
    start: LoopStart,
    opts: { provider?: Provider; threads?: number; stateOnDevice?: boolean } = {},
  ): Promise<TrainLoop> {
    const device = opts.provider ?? 'cpu'
    const kvRoute = { vocab: data.tokenizer.vocab, seed: run.seed }
    const session = await TrainingSession.create(
      run.model,
      { batch: run.batch_size, accum: run.accum, optim: optimOf(run), threads: opts.threads, provider: device, stateOnDevice: opts.stateOnDevice },
      { params: start.params, optimizer: start.optimizer, noise: start.noise, noiseLayout: start.noiseLayout, kvRoute },
    )
    try {
      const evaluator = await EvalSession.create(run.model, { threads: opts.threads, provider: device, kvRoute })
      return new TrainLoop(run, data, steps, session, evaluator, start.sampler, device)
    } catch (e) {
      await session.release()
      throw e
    }
  }

  get step(): number {
    return this.session.step
  }

  get done(): boolean {
    return this.session.step >= this.steps
  }

  /** The learning rate of the next update. */
  get nextLr(): number {
    return lrAt(this.schedule, this.session.step)
  }

  /** One update (and the eval when due). Throws DivergedStep on a non-finite loss or gradient norm. */
  async next(): Promise<LogRecord> {
    const lr = lrAt(this.schedule, this.session.step)
    const t0 = performance.now()
    const res = await this.session.update(lr, this.fill)
    const step = this.session.step
    const rec: LogRecord = {
      step,
      loss: res.loss,
      ce: res.ce,
      balance: res.balance,
      lr,
      grad_norm: res.gradNorm,
      ms: round(performance.now() - t0, 1),
      device: this.device,
    }
    if (!Number.isFinite(res.loss) || !Number.isFinite(res.gradNorm)) throw new DivergedStep(rec)
    if (step % this.run.eval_interval === 0 || step === this.steps) {
      const e0 = performance.now()
      const e = await this.evaluator.meanLossOnFeeds(this.session.paramFeeds(), evalBatches(this.run, this.data.val, step))
      rec.val_loss = e.loss
      if (e.routing) rec.routing = { share: e.routing.share.map((l) => l.map((x) => round(x, 4))), entropy: e.routing.entropy.map((h) => round(h, 4)) }
      const kv = variantSpec(this.run.model.attention).measuredKvFraction
      if (kv && e.routing) rec.kv_fraction = round(kv(this.run.model, e.routing.share), 4)
      rec.eval_ms = round(performance.now() - e0, 1)
    }
    return rec
  }

  async release(): Promise<void> {
    await this.session.release()
    await this.evaluator.release()
  }
}
