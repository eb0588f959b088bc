/** Evaluating a model: the mean cross entropy over batches of windows, and what its routers did. */
import { choiceLabels, type GptConfig, KV_ROUTE_LEVELS, paramFeeds, RoutingTally } from '@moas/gpt'
import { type Feed, type ParamInfo, type Provider, Session } from '@moas/tensor-core'
import { evalGraph } from './graphs'
import { type KvRouteFill, type KvRouteSource, kvRouteFeed, kvRouteFill } from './kv-route'
import { scalarValue } from './training-session'

/** What the routers did over an eval: per layer, the share of positions per choice and the mean gate entropy. */
export interface RoutingSummary {
  /** Per layer: share of positions whose highest gate is each scheme (MoAS) or expert of group 0 (GQE). */
  share: number[][]
  /** Per layer: mean entropy of those gates, nats. */
  entropy: number[]
}

/** Mean cross entropy of the model over batches of windows (eval mode), in nats. */
export class EvalSession {
  private constructor(
    private readonly session: Session,
    private readonly infos: readonly ParamInfo[],
    readonly seq: number,
    private readonly names: { idx: string; targets: string; gates: string[] },
    /** Choices per position the routing summary counts over (the registry's labels: 3 for MoAS, M for GQE's group 0). */
    private readonly choices: number,
    private readonly cfg: GptConfig,
    /** A moas-kv control's level filler (eval draws: the same levels for the same batches in every eval). */
    private readonly levels: KvRouteFill | null,
  ) {}

  /** `kvRoute`: a moas-kv control's level source (config kv_route random / rule); required for those. */
  static async create(cfg: GptConfig, opts: { threads?: number; provider?: Provider; kvRoute?: KvRouteSource } = {}): Promise<EvalSession> {
    const e = evalGraph(cfg)
    const choices = choiceLabels(cfg).length
    const levels = kvRouteFill(cfg, opts.kvRoute, 'kv-route-eval')
    const session = await Session.create(e.graph, { threads: opts.threads, provider: opts.provider })
    return new EvalSession(session, e.graph.params, cfg.block_size, e, choices, cfg, levels)
  }

  /**
   * Mean cross entropy over every target of every batch (rows of `seq` tokens; batches may differ in size),
   * weighting each batch by its number of targets. Sums in float64.
   */
  async meanLoss(
    params: ReadonlyMap<string, Float32Array>,
    batches: Iterable<{ x: BigInt64Array; y: BigInt64Array }>,
  ): Promise<{ loss: number; tokens: number; routing?: RoutingSummary }> {
    return this.meanLossOnFeeds(paramFeeds(params, this.infos), batches)
  }

  /** meanLoss with the parameters given as feeds (TrainingSession.paramFeeds(): on WebGPU, GPU buffers). */
  async meanLossOnFeeds(
    params: Readonly<Record<string, Feed>>,
    batches: Iterable<{ x: BigInt64Array; y: BigInt64Array }>,
  ): Promise<{ loss: number; tokens: number; routing?: RoutingSummary }> {
    const feeds: Record<string, Feed> = { ...params }
    let sum = 0
    let tokens = 0
    const tallies = this.names.gates.map(() => new RoutingTally(this.choices))
    let draw = 0
    for (const b of batches) {
      const rows = b.x.length / this.seq
      feeds[this.names.idx] = { dtype: 'int64', shape: [rows, this.seq], data: b.x }
      feeds[this.names.targets] = { dtype: 'int64', shape: [rows, this.seq], data: b.y }
      if (this.levels) {
        const levels = kvRouteFeed(this.cfg, rows, this.seq)
        this.levels(b.x, rows, draw++, levels.data as BigInt64Array)
        feeds[KV_ROUTE_LEVELS] = levels
      }
      const out = await this.session.run(feeds)
      sum += scalarValue(out.ce) * b.x.length
      tokens += b.x.length
      this.names.gates.forEach((name, layer) => {
        const g = out[name].data as Float32Array
        const per = g.length / b.x.length // gates per position (GQE: G·M, group 0 first)
        for (let p = 0; p < b.x.length; p++) tallies[layer].add(g, p * per)
      })
    }
    const routing = tallies.length ? { share: tallies.map((t) => t.share()), entropy: tallies.map((t) => t.entropy()) } : undefined
    return { loss: sum / tokens, tokens, routing }
  }

  async release(): Promise<void> {
    await this.session.release()
  }
}
