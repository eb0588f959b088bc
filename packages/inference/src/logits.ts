/**
 * The full-recompute path: logits of a whole context in one run, no cache (weights fed as inputs, so
 * training code can use it with parameters that change every step). The decode benchmark's baseline and
 * the reference the KV-cache path is tested against.
 */
import { buildLogitsGraph, type GptConfig, paramFeeds } from '@moas/gpt'
import { type HostTensor, type Provider, Session } from '@moas/tensor-core'

/** Next-token logits of a context (any length up to block_size): one session, batch 1, symbolic length. */
export class LogitsSession {
  private constructor(
    private readonly session: Session,
    private readonly feeds: Record<string, HostTensor>,
    readonly vocabSize: number,
  ) {}

  static async create(
    model: { config: GptConfig; params: ReadonlyMap<string, Float32Array> },
    opts: { threads?: number; provider?: Provider } = {},
  ): Promise<LogitsSession> {
    const graph = buildLogitsGraph(model.config)
    const session = await Session.create(graph, { threads: opts.threads, provider: opts.provider })
    return new LogitsSession(session, paramFeeds(model.params, graph.params), model.config.vocab_size)
  }

  /** Logits of the token after `context` (a Float32Array of vocab_size). */
  async next(context: readonly number[]): Promise<Float32Array> {
    const idx = BigInt64Array.from(context, (v) => BigInt(v))
    this.feeds.idx = { dtype: 'int64', shape: [1, idx.length], data: idx }
    const out = await this.session.run(this.feeds)
    const logits = out.logits.data as Float32Array
    return logits.subarray((idx.length - 1) * this.vocabSize, idx.length * this.vocabSize)
  }

  async release(): Promise<void> {
    await this.session.release()
  }
}
