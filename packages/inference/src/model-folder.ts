/**
 * Reading an exported model folder (browser-safe: the caller supplies a reader, e.g. fetch or
 * node:fs in `@moas/inference/node`). Everything is checked before a session is made: the files are
 * there, config.json is a moas export of a format this version reads, the tokenizer fits the config;
 * openModelFolder then probes the graph with one token and checks its outputs against the config.
 */
import { buildLogitsGraph, type CharTokenizer, ConfigError, fromHuggingFaceTokenizer, type GptConfig, kvHeadsPerLayer, resolveConfig } from '@moas/gpt'
import { float16Values, onnxInitializerData, type Provider, readOnnxModel } from '@moas/tensor-core'
import { parseChecksumFile, sha256Hex } from './checksums'
import { DecoderSession, type DecoderSessionOptions, type DecoderStep } from './decoder'
import { InferenceError } from './errors'
import { MODEL_FOLDER_FILES, MODEL_FOLDER_VERSION } from './export'

/** Reads a file of the folder by relative path; undefined when it does not exist. */
export type FolderReader = (path: string) => Promise<Uint8Array | undefined>

/** A FolderReader over files held in memory (what exportModelFiles returns): text files as UTF-8. */
export function memoryFolderReader(files: Readonly<Record<string, Uint8Array | string>>): FolderReader {
  const encoder = new TextEncoder()
  return async (path) => {
    const f = files[path]
    return f === undefined ? undefined : typeof f === 'string' ? encoder.encode(f) : f
  }
}

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
  const cache = new Map<string, Uint8Array | undefined>()
  let verified: Set<string> | null = null // the files SHA256SUMS vouches for, once checked
  const need = async (path: string) => {
    if (!cache.has(path)) cache.set(path, await read(path))
    const bytes = cache.get(path)
    if (bytes && verified && !verified.has(path))
      throw new InferenceError(`${where}/${path}: not listed in ${MODEL_FOLDER_FILES.checksums}, so it cannot be verified; export the checkpoint again`)
    if (!bytes)
      throw new InferenceError(
        `${where}: ${path} is missing; a model folder from \`moas export\` holds ${Object.values(MODEL_FOLDER_FILES)
          .filter((f) => f !== MODEL_FOLDER_FILES.onnxData)
          .join(', ')} (and ${MODEL_FOLDER_FILES.onnxData} for external-data exports; export it again)`,
      )
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
  if (!moas || typeof moas !== 'object')
    throw new InferenceError(`${where}/${MODEL_FOLDER_FILES.config}: no "moas" key; this folder was not written by \`moas export\``)
  if (moas.format_version !== MODEL_FOLDER_VERSION)
    throw new InferenceError(
      `${where}/${MODEL_FOLDER_FILES.config}: moas format_version ${JSON.stringify(moas.format_version)}, this moas reads version ${MODEL_FOLDER_VERSION}; export the checkpoint again with this version`,
    )
  if (moas.checksums !== undefined) verified = await verifyChecksums(need, moas.checksums, where)
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
    throw new InferenceError(
      `${where}: ${MODEL_FOLDER_FILES.tokenizer} has ${tokenizer.vocabSize} characters but config.json's vocab_size is ${config.vocab_size}; the files come from different models (export again)`,
    )
  const dtype = moas.dtype ?? 'float32'
  if (dtype !== 'float32' && dtype !== 'float16')
    throw new InferenceError(`${where}/${MODEL_FOLDER_FILES.config}: moas.dtype ${JSON.stringify(dtype)} is neither float32 nor float16`)
  const externalData = typeof moas.external_data === 'string' ? [{ path: moas.external_data, data: await need(MODEL_FOLDER_FILES.onnxData) }] : undefined
  return { config, tokenizer, onnx: await need(MODEL_FOLDER_FILES.onnx), externalData, dtype, moas, where }
}

/**
 * Check every file SHA256SUMS lists (config.json included) before anything is used: a flipped byte is an
 * error naming the file, never other text. Returns the paths it vouches for.
 */
async function verifyChecksums(need: (path: string) => Promise<Uint8Array>, named: unknown, where: string): Promise<Set<string>> {
  if (named !== MODEL_FOLDER_FILES.checksums)
    throw new InferenceError(
      `${where}/${MODEL_FOLDER_FILES.config}: moas.checksums ${JSON.stringify(named)}, expected "${MODEL_FOLDER_FILES.checksums}"; export the checkpoint again`,
    )
  const path = MODEL_FOLDER_FILES.checksums
  let sums: Map<string, string>
  try {
    sums = parseChecksumFile(new TextDecoder('utf-8', { fatal: true }).decode(await need(path)))
  } catch (e) {
    if (e instanceof InferenceError) throw e
    throw new InferenceError(`${where}/${path}: unreadable (${(e as Error).message}); the folder is damaged: copy or export it again`)
  }
  if (!sums.has(MODEL_FOLDER_FILES.config))
    throw new InferenceError(`${where}/${path}: does not list ${MODEL_FOLDER_FILES.config}; the folder is damaged: copy or export it again`)
  for (const [file, sum] of sums) {
    if ((await sha256Hex(await need(file))) !== sum)
      throw new InferenceError(
        `${where}/${file}: changed since export (its sha256 does not match ${path}): damaged in copying or on disk, or edited; copy or export the folder again`,
      )
  }
  return new Set([...sums.keys(), path])
}

/**
 * The folder's weights, read out of onnx/model.onnx (and its external data): every parameter the
 * decoder graph of its config declares, by name, as float32 (a float16 export's values converted
 * exactly; the session converts them back).
 */
export function modelFolderWeights(folder: ModelFolder): Map<string, Float32Array> {
  let initializers: ReturnType<typeof readOnnxModel>['initializers']
  try {
    initializers = readOnnxModel(folder.onnx).initializers
  } catch (e) {
    throw new InferenceError(`${folder.where}/${MODEL_FOLDER_FILES.onnx}: cannot read its weights (${(e as Error).message}); export the checkpoint again`)
  }
  const weights = new Map<string, Float32Array>()
  for (const { tensor } of buildLogitsGraph(folder.config).params) {
    const t = initializers.get(tensor.name)
    const fix = "the file is not this config's moas export (export it again, or open it with graph: 'exported')"
    if (!t) throw new InferenceError(`${folder.where}/${MODEL_FOLDER_FILES.onnx}: no weight '${tensor.name}'; ${fix}`)
    if (t.dims.join(',') !== tensor.shape.join(','))
      throw new InferenceError(
        `${folder.where}/${MODEL_FOLDER_FILES.onnx}: weight '${tensor.name}' is [${t.dims.join(', ')}], config.json implies [${tensor.shape.join(', ')}]; ${fix}`,
      )
    let data: ReturnType<typeof onnxInitializerData>
    try {
      data = onnxInitializerData(t, folder.externalData)
    } catch (e) {
      throw new InferenceError(`${folder.where}/${MODEL_FOLDER_FILES.onnx}: ${(e as Error).message}`)
    }
    if (t.dtype === 'float32') weights.set(tensor.name, data as Float32Array)
    else if (t.dtype === 'float16') weights.set(tensor.name, float16Values(data as Uint16Array))
    else throw new InferenceError(`${folder.where}/${MODEL_FOLDER_FILES.onnx}: weight '${tensor.name}' is ${t.dtype}, not float32 or float16; ${fix}`)
  }
  return weights
}

export interface OpenModelFolderOptions {
  provider?: Provider
  threads?: number
  /**
   * Which graph runs: 'exported' (default) the folder's own onnx/model.onnx, exactly what other ONNX
   * clients run; 'weights' a decoder graph built here from the config and the weights read out of it
   * (modelFolderWeights). The same outputs (tested), but the session keeps the KV cache and the graph
   * returns only the new positions, where the exported graph returns the whole cache every step (the
   * format ONNX decoder clients expect), which onnxruntime-node copies into JS at ~100 ms per 128 MiB:
   * at long contexts that copy outweighs the step. 'weights' also takes any attention kernel.
   */
  graph?: 'exported' | 'weights'
  /** With graph 'weights': the attention core (DecoderSessionOptions.attention). */
  attention?: DecoderSessionOptions['attention']
}

/** A DecoderSession on the folder's model, after a one-token probe that its outputs fit the config. */
export async function openModelFolder(folder: ModelFolder, opts: OpenModelFolderOptions = {}): Promise<DecoderSession> {
  const graph = opts.graph ?? 'exported'
  if (graph !== 'exported' && graph !== 'weights')
    throw new InferenceError(`graph '${graph}': use 'exported' (the folder's onnx/model.onnx) or 'weights' (built from its weights)`)
  if (opts.attention !== undefined && graph !== 'weights')
    throw new InferenceError("attention: an exported graph runs the kernel it was exported with; open the folder with graph: 'weights' to choose one")
  const sessionOpts = { provider: opts.provider, threads: opts.threads }
  const weights = graph === 'weights' ? modelFolderWeights(folder) : null // its errors name the folder already
  let session: DecoderSession
  try {
    session = weights
      ? await DecoderSession.create({ config: folder.config, params: weights, dtype: folder.dtype }, { ...sessionOpts, attention: opts.attention })
      : await DecoderSession.create({ config: folder.config, onnx: folder.onnx, externalData: folder.externalData, dtype: folder.dtype }, sessionOpts)
  } catch (e) {
    if (e instanceof InferenceError) throw new InferenceError(`${folder.where}/${MODEL_FOLDER_FILES.onnx}: ${e.message}`)
    throw new InferenceError(
      `${folder.where}/${MODEL_FOLDER_FILES.onnx}: ONNX Runtime cannot load it (${(e as Error).message.split('\n')[0]}); export the checkpoint again`,
    )
  }
  const cfg = folder.config
  let probe: DecoderStep
  try {
    probe = await session.prefill([[0]])
  } catch (e) {
    await session.release()
    throw new InferenceError(
      `${folder.where}/${MODEL_FOLDER_FILES.onnx}: does not run as the decoder config.json describes (${(e as Error).message.split('\n')[0]}); the files come from different models (export again)`,
    )
  }
  const heads = session.cachedHeads
  // a level cache (moas-kv from weights) holds each token's own level: no fixed head count to compare
  if (probe.logits.length !== cfg.vocab_size || (!session.levels && heads !== kvHeadsPerLayer(cfg))) {
    await session.release()
    throw new InferenceError(
      `${folder.where}: ${MODEL_FOLDER_FILES.onnx} gives ${probe.logits.length} logits and ${heads} cached heads per layer, config.json says ${cfg.vocab_size} and ${kvHeadsPerLayer(cfg)}; the files come from different models (export again)`,
    )
  }
  return session
}
