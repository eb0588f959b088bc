/** --checkpoint DIR or --model DIR: the decoder session and tokenizer of generate and analyze. */
import { type CharTokenizer, DecoderSession, openModelFolder } from '@moas/inference'
import { loadModel, loadModelFolder } from '@moas/inference/node'
import type { Provider } from '@moas/tensor-core'
import { UsageError } from '../errors'

export async function openModelSource(
  opts: { checkpoint?: string; model?: string; threads?: number; device?: Provider; graph?: 'exported' | 'weights' },
  routing = false,
): Promise<{ session: DecoderSession; tokenizer: CharTokenizer }> {
  if ((opts.checkpoint === undefined) === (opts.model === undefined))
    throw new UsageError('give exactly one of --checkpoint DIR (a training checkpoint) or --model DIR (an exported model folder)')
  const sessionOpts = { threads: opts.threads, provider: opts.device }
  if (opts.model !== undefined) {
    const folder = await loadModelFolder(opts.model)
    return { session: await openModelFolder(folder, { ...sessionOpts, graph: opts.graph }), tokenizer: folder.tokenizer }
  }
  const model = await loadModel(opts.checkpoint!)
  return { session: await DecoderSession.create(model, { ...sessionOpts, routing }), tokenizer: model.tokenizer }
}
