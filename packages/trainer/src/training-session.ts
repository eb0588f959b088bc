/**
 * A model being trained: its sessions (created once), parameters, Adam moments and dropout noise.
 *
 * - Training step (accum = 1): one graph does forward + backward + AdamW, so one `session.run` per step.
 *   Parameters and Adam moments go in as inputs and come back as `next.*` outputs, which become the next
 *   step's feeds as they are (ONNX Runtime hands us fresh buffers; we never copy them again).
 *   On WebGPU (`stateOnDevice`) those outputs stay in GPU buffers and are fed back from there.
 * - Gradient accumulation (accum > 1): a grads-only graph runs once per micro-batch, JavaScript sums the
 *   gradients into buffers allocated once, and a small apply graph does clipping + AdamW on their mean.
 *   This is the simplest correct split: the fused graph would need the gradient sum inside ONNX, and
 *   ONNX Runtime's accumulator ops are not in the npm build. The mean of micro-batch gradients equals the
 *   gradient of the whole batch for the cross entropy (a mean over tokens); the router balance loss is a
 *   nonlinear function of batch-mean gates, so with a router it is computed per micro-batch (as every
 *   framework's accumulation does).
 * - Dropout: the training graphs are built with `graph.dropoutNoise = true`; every dropout site is a bool
 *   keep-mask input we fill from a seeded generator (noise.ts) into buffers allocated once.
 * - Eval (no dropout, no balance loss) and logits (for generation) graphs share the parameter names, so
 *   the training parameters are fed to them as they are.
 */
import { type GptConfig, KV_BUDGET_TARGET, KV_ROUTE_LEVELS, kvBudgetTarget } from '@moas/gpt'
import { adamwScalars, DEVICE_OUTPUT_PROVIDERS, DeviceTensor, type Feed, type Graph, type HostTensor, type Provider, Session } from '@moas/tensor-core'
import { buildApplyGraph, buildGradGraph, buildTrainingGraph, type OptimOptions, type TrainingGraph } from './graphs'
import { type KvRouteFill, type KvRouteSource, kvRouteFeed, kvRouteFill } from './kv-route'
import { NoiseFeeder, type NoiseLayout, type Xoshiro128 } from './noise'

export interface OptimizerState {
  /** Updates applied so far (AdamW's t). */
  step: number
  m: Map<string, Float32Array>
  v: Map<string, Float32Array>
}

export interface StepResult {
  loss: number
  ce: number
  balance: number
  /** Global gradient norm before clipping. */
  gradNorm: number
}

/** Writes the next batch into x and y ([batch, seq] int64, row-major). */
export type FillBatch = (x: BigInt64Array, y: BigInt64Array) => void

export interface TrainingSessionOptions {
  batch: number
  seq?: number
  /** Micro-batches per update (default 1). */
  accum?: number
  optim: OptimOptions
  threads?: number
  /** Execution provider of the sessions (default cpu). */
  provider?: Provider
  /**
   * Keep parameters and Adam moments on the device between updates (the next.* outputs stay in WebGPU
   * buffers and are fed back as they are), instead of copying them to JS and back every update. Default:
   * on for webgpu, the only provider whose outputs ONNX Runtime's JS API can leave on the device.
   */
  stateOnDevice?: boolean
}

const f32 = (data: Float32Array, shape: readonly number[]): HostTensor => ({ dtype: 'float32', shape, data })
const scalar = (): HostTensor => f32(new Float32Array(1), [])

/** Per parameter: the names of its feeds and of the outputs that carry its next values. */
interface StateNames {
  param: string
  m: string
  v: string
  nextParam: string
  nextM: string
  nextV: string
  grad?: string
}

/**
 * A model being trained: its sessions (created once), parameters, Adam moments and noise generator. Call
 * `update(lr, fillBatch)` once per update. Every feed and output name comes from the graph builders
 * (gpt's token inputs, tensor-core's AdamW state), never retyped here.
 */
export class TrainingSession {
  private readonly lr = scalar()
  private readonly bc1 = scalar()
  private readonly bc2 = scalar()
  /** moas-kv: its budget's target for the update being run (the graph's KV_BUDGET_TARGET input), else null. */
  private readonly budgetTarget: HostTensor | null
  /** A moas-kv control: its levels' feed and filler (kv-route.ts), else null. */
  private readonly levels: { feed: HostTensor; fill: KvRouteFill } | null
  private readonly x: BigInt64Array
  private readonly y: BigInt64Array
  /** Per parameter: its names and current values (in JS, or on the device once an update has run there). */
  private readonly state: { names: StateNames; p: Feed; m: Feed; v: Feed; grad?: Float32Array }[]
  private readonly trainFeeds: Record<string, Feed> = {}
  private readonly applyFeeds: Record<string, Feed> = {}
  private t: number
  /** ms of the last update spent drawing dropout noise in JS and inside session.run. */
  readonly lastTiming = { noiseMs: 0, runMs: 0 }
  /** The state copied to JS since the last update (params() and optimizerState() download it once). */
  private hostCopy: Promise<{ p: Float32Array; m: Float32Array; v: Float32Array }[]> | null = null

  private constructor(
    readonly cfg: GptConfig,
    readonly opts: Required<Omit<TrainingSessionOptions, 'threads' | 'provider' | 'stateOnDevice'>>,
    /** The graph of the main session (the fused step, or the grads graph with accumulation). */
    readonly graph: Graph,
    private readonly main: Session,
    private readonly apply: Session | null,
    private readonly noise: NoiseFeeder,
    /** Whether parameters and moments stay on the device between updates. */
    readonly stateOnDevice: boolean,
    built: { main: TrainingGraph; apply: TrainingGraph | null },
    params: ReadonlyMap<string, Float32Array>,
    optimizer: OptimizerState,
    kvRoute: KvRouteSource | undefined,
  ) {
    const { batch: B, seq: T } = opts
    this.x = new BigInt64Array(B * T)
    this.y = new BigInt64Array(B * T)
    this.t = optimizer.step
    const tokens = {
      [built.main.idx]: { dtype: 'int64', shape: [B, T], data: this.x },
      [built.main.targets]: { dtype: 'int64', shape: [B, T], data: this.y },
    } as Record<string, HostTensor>
    Object.assign(this.trainFeeds, tokens, noise.feeds)
    this.budgetTarget = graph.inputs.some((t) => t.name === KV_BUDGET_TARGET) ? scalar() : null
    if (this.budgetTarget) this.trainFeeds[KV_BUDGET_TARGET] = this.budgetTarget
    const fill = kvRouteFill(cfg, kvRoute, 'kv-route')
    this.levels = fill ? { feed: kvRouteFeed(cfg, B, T), fill } : null
    if (this.levels) this.trainFeeds[KV_ROUTE_LEVELS] = this.levels.feed
    const adam = (built.apply ?? built.main).optimizer!
    const scalars = { [adam.lr.name]: this.lr, [adam.biasCorrection1.name]: this.bc1, [adam.biasCorrection2.name]: this.bc2 }
    Object.assign(apply ? this.applyFeeds : this.trainFeeds, scalars)
    const grads = new Map((built.apply?.grads ?? []).map((g) => [g.param, g.grad]))
    const gradOutputs = new Map(built.main.grads.map((g) => [g.param, g.grad]))
    this.state = adam.state.map((names) => {
      const info = graph.params.find((p) => p.tensor.name === names.param)!
      const shape = info.tensor.shape as number[]
      const n = shape.reduce((a, b) => a * b, 1)
      const value = params.get(names.param)
      if (!value || value.length !== n) throw new Error(`TrainingSession: parameter '${names.param}' needs ${n} values, got ${value?.length ?? 'none'}`)
      const p = f32(value, shape)
      const m = f32(optimizer.m.get(names.param) ?? new Float32Array(n), shape)
      const v = f32(optimizer.v.get(names.param) ?? new Float32Array(n), shape)
      let g: Float32Array | undefined
      if (apply) {
        g = new Float32Array(n)
        this.applyFeeds[grads.get(names.param)!] = f32(g, shape)
      }
      const entry = { names: { ...names, grad: gradOutputs.get(names.param) }, p: p as Feed, m: m as Feed, v: v as Feed, grad: g }
      this.feedState(entry)
      return entry
    })
  }

  /** Put one parameter's current values into the feed tables that read them. */
  private feedState(s: { names: StateNames; p: Feed; m: Feed; v: Feed }): void {
    this.trainFeeds[s.names.param] = s.p
    const opt = this.apply ? this.applyFeeds : this.trainFeeds
    if (this.apply) this.applyFeeds[s.names.param] = s.p
    opt[s.names.m] = s.m
    opt[s.names.v] = s.v
  }

  static async create(
    cfg: GptConfig,
    opts: TrainingSessionOptions,
    init: {
      params: ReadonlyMap<string, Float32Array>
      optimizer?: OptimizerState
      noise: Xoshiro128
      noiseLayout?: NoiseLayout
      /** A moas-kv control's level source (config kv_route random / rule); required for those. */
      kvRoute?: KvRouteSource
    },
  ): Promise<TrainingSession> {
    const full = { batch: opts.batch, seq: opts.seq ?? cfg.block_size, accum: opts.accum ?? 1, optim: opts.optim }
    if (!(Number.isInteger(full.accum) && full.accum >= 1)) throw new RangeError(`accum must be a positive integer, got ${full.accum}`)
    const provider = opts.provider ?? 'cpu'
    const stateOnDevice = opts.stateOnDevice ?? DEVICE_OUTPUT_PROVIDERS.includes(provider)
    if (stateOnDevice && !DEVICE_OUTPUT_PROVIDERS.includes(provider))
      throw new RangeError(
        `stateOnDevice needs a provider whose outputs can stay on the device (${DEVICE_OUTPUT_PROVIDERS.join(', ')}), not '${provider}'; leave it unset`,
      )
    const built = full.accum === 1 ? buildTrainingGraph(cfg, full) : buildGradGraph(cfg, full)
    const applyGraph = full.accum === 1 ? null : buildApplyGraph(built.graph.params, full.optim)
    // The graph holding the optimizer returns next.* (parameters and moments): those stay on the device.
    const nextNames = (g: TrainingGraph) => (stateOnDevice ? g.optimizer!.state.flatMap((s) => [s.nextParam, s.nextM, s.nextV]) : [])
    const main = await Session.create(built.graph, { threads: opts.threads, provider, deviceOutputs: applyGraph ? [] : nextNames(built) })
    const apply = applyGraph ? await Session.create(applyGraph.graph, { threads: opts.threads, provider, deviceOutputs: nextNames(applyGraph) }) : null
    const optimizer = init.optimizer ?? { step: 0, m: new Map(), v: new Map() }
    return new TrainingSession(
      cfg,
      full,
      built.graph,
      main,
      apply,
      new NoiseFeeder(built.graph.dropoutMasks, init.noise, init.noiseLayout),
      stateOnDevice,
      { main: built, apply: applyGraph },
      init.params,
      optimizer,
      init.kvRoute,
    )
  }

  /**
   * Where the parameters and moments are now: 'cpu' (JS memory) or ONNX Runtime's device location
   * ('gpu-buffer'); 'cpu+gpu-buffer' if mixed. A download (params(), optimizerState(): a checkpoint, an
   * export) turns ONNX Runtime's tensors into CPU ones, so afterwards it reads 'cpu' until the next update
   * (which uploads that copy once and leaves its outputs on the device again). Evals read paramFeeds().
   */
  get stateLocation(): string {
    const where = new Set(this.state.flatMap((s) => [s.p, s.m, s.v].map((t) => (t instanceof DeviceTensor ? t.location : 'cpu'))))
    return [...where].sort().join('+')
  }

  /** Updates applied so far. */
  get step(): number {
    return this.t
  }

  /** Uint16 noise values drawn per forward pass (keep flags decided; causal rows skip the unused triangle). */
  get noisePerPass(): number {
    return this.noise.drawn
  }

  /** How the dropout noise fills causal attention masks (saved with the generator state). */
  get noiseLayout(): NoiseLayout {
    return this.noise.layout
  }

  /** Apply one update with learning rate `lr`: `accum` micro-batches, each filled by `fillBatch`. */
  async update(lr: number, fillBatch: FillBatch): Promise<StepResult> {
    const t = this.t + 1
    const s = adamwScalars(t, lr, this.opts.optim)
    this.lr.data[0] = s.lr
    this.bc1.data[0] = s.biasCorrection1
    this.bc2.data[0] = s.biasCorrection2
    if (this.budgetTarget) this.budgetTarget.data[0] = kvBudgetTarget(this.cfg, this.t) // after t − 1 updates: 1 at the first
    this.lastTiming.noiseMs = 0
    this.lastTiming.runMs = 0
    this.hostCopy = null
    const result = this.apply ? await this.accumulatedUpdate(fillBatch) : await this.fusedUpdate(fillBatch)
    this.t = t
    return result
  }

  /** Fill the batch and the noise, then run the main session (timing both). `micro`: the micro-batch of this update. */
  private async forward(fillBatch: FillBatch, micro = 0) {
    fillBatch(this.x, this.y)
    const t0 = performance.now()
    this.noise.fill()
    this.levels?.fill(this.x, this.opts.batch, this.t * this.opts.accum + micro, this.levels.feed.data as BigInt64Array)
    const t1 = performance.now()
    const out = await this.main.runOnDevice(this.trainFeeds)
    this.lastTiming.noiseMs += t1 - t0
    this.lastTiming.runMs += performance.now() - t1
    return out
  }

  /**
   * The next.* outputs become the next feeds as they are (ONNX Runtime hands back fresh buffers, in JS or
   * on the device); the device buffers they replace are freed.
   */
  private takeNext(out: { host: Record<string, HostTensor>; device: Record<string, DeviceTensor> }): void {
    const next = (name: string): Feed => out.device[name] ?? out.host[name]
    for (const s of this.state) {
      for (const old of [s.p, s.m, s.v]) if (old instanceof DeviceTensor) old.dispose()
      s.p = next(s.names.nextParam)
      s.m = next(s.names.nextM)
      s.v = next(s.names.nextV)
      this.feedState(s)
    }
  }

  private async fusedUpdate(fillBatch: FillBatch): Promise<StepResult> {
    const out = await this.forward(fillBatch)
    this.takeNext(out)
    const h = out.host
    return { loss: scalarValue(h.loss), ce: scalarValue(h.ce), balance: scalarValue(h.balance), gradNorm: scalarValue(h.grad_norm) }
  }

  private async accumulatedUpdate(fillBatch: FillBatch): Promise<StepResult> {
    const k = this.opts.accum
    let loss = 0
    let ce = 0
    let balance = 0
    for (const s of this.state) s.grad!.fill(0)
    for (let i = 0; i < k; i++) {
      const { host: out } = await this.forward(fillBatch, i)
      loss += scalarValue(out.loss) / k
      ce += scalarValue(out.ce) / k
      balance += scalarValue(out.balance) / k
      for (const s of this.state) {
        const acc = s.grad!
        const g = out[s.names.grad!].data as Float32Array
        for (let j = 0; j < acc.length; j++) acc[j] += g[j] / k
      }
    }
    const t0 = performance.now()
    const out = await this.apply!.runOnDevice(this.applyFeeds)
    this.lastTiming.runMs += performance.now() - t0
    this.takeNext(out)
    return { loss, ce, balance, gradNorm: scalarValue(out.host.grad_norm) }
  }

  /** The state in JS: the live arrays on a host provider; with stateOnDevice, one download per update. */
  private host() {
    const data = async (t: Feed) => (t instanceof DeviceTensor ? (await t.download()).data : t.data) as Float32Array
    this.hostCopy ??= Promise.all(this.state.map(async (s) => ({ p: await data(s.p), m: await data(s.m), v: await data(s.v) })))
    return this.hostCopy
  }

  /**
   * The current parameters as feeds for another session on the same provider (EvalSession.meanLossOnFeeds):
   * with stateOnDevice the GPU buffers themselves, so an eval needs no download. Valid until the next update.
   */
  paramFeeds(): Record<string, Feed> {
    return Object.fromEntries(this.state.map((s) => [s.names.param, s.p]))
  }

  /** The current parameters (do not modify: on host providers these are the arrays the next update reads). */
  async params(): Promise<Map<string, Float32Array>> {
    const h = await this.host()
    return new Map(this.state.map((s, i) => [s.names.param, h[i].p]))
  }

  async optimizerState(): Promise<OptimizerState> {
    const h = await this.host()
    return {
      step: this.t,
      m: new Map(this.state.map((s, i) => [s.names.param, h[i].m])),
      v: new Map(this.state.map((s, i) => [s.names.param, h[i].v])),
    }
  }

  noiseState() {
    return this.noise.state()
  }

  async release(): Promise<void> {
    for (const s of this.state) for (const t of [s.p, s.m, s.v]) if (t instanceof DeviceTensor) t.dispose()
    await this.main.release()
    await this.apply?.release()
  }
}

/** A scalar output's value (loss, ce, grad_norm). */
export const scalarValue = (t: HostTensor): number => Number(t.data[0])
