/** evaluateText: a checkpoint directory and a text (Node only). */
import { loadModel } from '@moas/gpt/node'
import { type EvalResult, type EvaluateOptions, evaluateTokens } from './evaluate'

/** evaluateTokens of a text, with the checkpoint's tokenizer. */
export async function evaluateText(checkpointDir: string, text: string, opts: EvaluateOptions = {}): Promise<EvalResult> {
  const model = await loadModel(checkpointDir)
  return evaluateTokens(model, model.tokenizer.encode(text, { onUnknown: opts.onUnknown }), opts)
}
