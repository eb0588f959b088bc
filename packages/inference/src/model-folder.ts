/**
 * Reading an exported model folder (browser-safe: the caller supplies a reader, e.g. fetch or
 * node:fs in `@moas/inference/node`). Everything is checked before a session is made: the files are
 * there, config.json is a moas export of a format this version reads, the tokenizer fits the config;
 * openModelFolder then probes the ONNX graph with one token and checks its outputs against the config.
 */
import { ConfigError, type GptConfig, kvHeadsPerLayer, resolveConfig } from '@moas/gpt'
import type { Provider } from '@moas/tensor-core'
import { DecoderSession } from './decoder'
import { InferenceError } from './errors'
import { MODEL_FOLDER_FILES, MODEL_FOLDER_VERSION } from './export'
import { type CharTokenizer, fromHuggingFaceTokenizer } from './tokenizer'

/** Reads a file of the folder by relative path; undefined when it does not exist. */
export type FolderReader = (path: string) => Promise<Uint8Array | undefined>

export interface ModelFolder {
  config: GptConfig
  tokenizer: CharTokenizer
  onnx: Uint8Array
  /** The weights of an export with external data (onnx/model.onnx_data), by the name model.onnx refers to. */
  externalData?: { path: string; data: Uint8Array }[]
  /** float32, or float16 (the graph computes and caches in float16). */
  dtype: 'float32' | 'float16'
  /** config.json's "moas" key (format, kv layout, training record). */
  moas: Record<string, unknown>
  where: string
}

export async function readModelFolder(read: FolderReader, where: string): Promise<ModelFolder> {
  const need = async (path: string) => {
    const bytes = await read(path)
    if (!bytes) throw new InferenceError(`${where}: ${path} is missing; a model folder from \`moas export\` holds ${Object.values(MODEL_FOLDER_FILES).filter((f) => f !== MODEL_FOLDER_FILES.onnxData).join(', ')} (and ${MODEL_FOLDER_FILES.onnxData} for external-data exports; export it again)`)
    return bytes
  }
  const json = async (path: string) => {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(await need(path))
    try {
      return JSON.parse(text) as unknown
    } catch (e) {
      throw new InferenceError(`${where}/${path}: not valid JSON (${(e as Error).message})`)
    }
  }
  const cfgJson = (await json(MODEL_FOLDER_FILES.config)) as { moas?: Record<string, unknown> } | null
  const moas = cfgJson?.moas
  if (!moas || typeof moas !== 'object') throw new InferenceError(`${where}/${MODEL_FOLDER_FILES.config}: no "moas" key; this folder was not written by \`moas export\``)
  if (moas.format_version !== MODEL_FOLDER_VERSION)
    throw new InferenceError(`${where}/${MODEL_FOLDER_FILES.config}: moas format_version ${JSON.stringify(moas.format_version)}, this moas reads version ${MODEL_FOLDER_VERSION}; export the checkpoint again with this version`)
  let config: GptConfig
  try {
    config = resolveConfig(moas.model as Record<string, unknown>)
  } catch (e) {
    if (e instanceof ConfigError) throw new InferenceError(`${where}/${MODEL_FOLDER_FILES.config}: invalid moas.model config: ${e.message}`)
    throw e
  }
  let tokenizer: CharTokenizer
  try {
    tokenizer = fromHuggingFaceTokenizer(await json(MODEL_FOLDER_FILES.tokenizer), `${where}/${MODEL_FOLDER_FILES.tokenizer}`)
  } catch (e) {
    if (e instanceof InferenceError) throw e
    throw new InferenceError((e as Error).message)
  }
  if (tokenizer.vocabSize !== config.vocab_size)
    throw new InferenceError(`${where}: ${MODEL_FOLDER_FILES.tokenizer} has ${tokenizer.vocabSize} characters but config.json's vocab_size is ${config.vocab_size}; the files come from different models (export again)`)
  const dtype = moas.dtype ?? 'float32'
  if (dtype !== 'float32' && dtype !== 'float16') throw new InferenceError(`${where}/${MODEL_FOLDER_FILES.config}: moas.dtype ${JSON.stringify(dtype)} is neither float32 nor float16`)
  const externalData = typeof moas.external_data === 'string' ? [{ path: moas.external_data, data: await need(MODEL_FOLDER_FILES.onnxData) }] : undefined
  return { config, tokenizer, onnx: await need(MODEL_FOLDER_FILES.onnx), externalData, dtype, moas, where }
}

/** A DecoderSession on the folder's ONNX graph, after a one-token probe that its outputs fit the config. */
export async function openModelFolder(folder: ModelFolder, opts: { provider?: Provider; threads?: number } = {}): Promise<DecoderSession> {
  let session: DecoderSession
  try {
    session = await DecoderSession.create({ config: folder.config, onnx: folder.onnx, externalData: folder.externalData, dtype: folder.dtype }, opts)
  } catch (e) {
    if (e instanceof InferenceError) throw new InferenceError(`${folder.where}/${MODEL_FOLDER_FILES.onnx}: ${e.message}`)
    throw new InferenceError(`${folder.where}/${MODEL_FOLDER_FILES.onnx}: ONNX Runtime cannot load it (${(e as Error).message.split('\n')[0]}); export the checkpoint again`)
  }
  const cfg = folder.config
  let probe
  try {
    probe = await session.prefill([[0]])
  } catch (e) {
    await session.release()
    throw new InferenceError(`${folder.where}/${MODEL_FOLDER_FILES.onnx}: does not run as the decoder config.json describes (${(e as Error).message.split('\n')[0]}); the files come from different models (export again)`)
  }
  const heads = session.cachedHeads
  if (probe.logits.length !== cfg.vocab_size || heads !== kvHeadsPerLayer(cfg)) {
    await session.release()
    throw new InferenceError(`${folder.where}: ${MODEL_FOLDER_FILES.onnx} gives ${probe.logits.length} logits and ${heads} cached heads per layer, config.json says ${cfg.vocab_size} and ${kvHeadsPerLayer(cfg)}; the files come from different models (export again)`)
  }
  return session
}
