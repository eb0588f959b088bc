/**
 * `moas export`: a model folder laid out as published ONNX decoder models are, so clients other than
 * moas load it (transformers.js, plain onnxruntime, onnxruntime-genai):
 *
 *   config.json              generic keys (model_type "llama", sizes, token ids) + the moas config under "moas"
 *   generation_config.json   greedy, max_length = block_size
 *   tokenizer.json           Hugging Face tokenizers format, character level, ids equal to moas's
 *   tokenizer_config.json
 *   onnx/model.onnx          the merged decoder (KV cache), weights embedded
 *   genai_config.json        onnxruntime-genai's description of the same decoder
 *   README.md                the model card
 *   SHA256SUMS               sha256 of every other file but the card (`sha256sum -c SHA256SUMS`), checked by moas on load
 *
 * Why "llama": transformers.js refuses a model_type it does not know, and for a decoder type it knows
 * it feeds exactly the graph's inputs (input_ids, attention_mask, position_ids, past_key_values.*) and
 * reads logits / present.*; the architecture itself is entirely in the ONNX graph. The folder holds no
 * PyTorch weights, so PyTorch transformers cannot load it as a Llama (and should not).
 * `num_key_value_heads` is the number of KV heads each layer caches (MoAS variants: H + G + 1).
 * Browser-safe: returns the files; `@moas/inference/node` writes them.
 */

import type { LoadedModel } from '@moas/gpt'
import { DECODER_IO, type GptConfig, isRouted, kvCacheBytesPerToken, kvCacheLayout, kvHeadsPerLayer, paramCounts, toHuggingFaceTokenizer } from '@moas/gpt'
import { serialize, serializeWithExternalData } from '@moas/tensor-core'
import { CHECKSUM_FILE, checksumFile } from './checksums'
import { buildDecoderGraph, halfParams } from './decoder'
import { InferenceError } from './errors'

export const EXPORT_DTYPES = ['float32', 'float16'] as const
export type ExportDType = (typeof EXPORT_DTYPES)[number]

/** Files of a model folder, by relative path. */
export const MODEL_FOLDER_FILES = {
  config: 'config.json',
  generationConfig: 'generation_config.json',
  tokenizer: 'tokenizer.json',
  tokenizerConfig: 'tokenizer_config.json',
  onnx: 'onnx/model.onnx',
  /** The weights, when the export uses ONNX external data (models beyond protobuf's 2 GiB). */
  onnxData: 'onnx/model.onnx_data',
  genaiConfig: 'genai_config.json',
  readme: 'README.md',
  /** sha256 of every other file but the card (`sha256sum -c SHA256SUMS`), checked by moas on load. */
  checksums: CHECKSUM_FILE,
} as const

/** The format of the "moas" key of config.json; bumped when the graph's inputs or outputs change. */
export const MODEL_FOLDER_VERSION = 1

export interface ExportOptions {
  /** dtype of onnx/model.onnx (default float32): float16 stores weights, computes activations and keeps the KV cache in float16. */
  dtype?: ExportDType
  /**
   * Weights in onnx/model.onnx_data (ONNX external data) instead of inside model.onnx: required beyond
   * protobuf's 2 GiB; 'auto' (default) uses it only then.
   */
  externalData?: boolean | 'auto'
  /** What the card says about the model (the run that trained it). */
  card?: { trainingData?: string; valLoss?: number; steps?: number }
}

/** ONNX's protobuf limit for one file: beyond it (with a margin for the graph) the weights go to external data. */
const PROTOBUF_LIMIT = 2 ** 31 - 1
const EXTERNAL_DATA_NAME = 'model.onnx_data' // relative to onnx/model.onnx

export function exportModelFiles(model: LoadedModel, opts: ExportOptions = {}): Record<string, Uint8Array | string> {
  const dtype = opts.dtype ?? 'float32'
  if (!(EXPORT_DTYPES as readonly string[]).includes(dtype)) throw new InferenceError(`unknown export dtype '${dtype}'; choose ${EXPORT_DTYPES.join(' or ')}`)
  const cfg = model.config
  const bytes = paramCounts(cfg).total * (dtype === 'float16' ? 2 : 4)
  const external = opts.externalData === true || ((opts.externalData ?? 'auto') === 'auto' && bytes > PROTOBUF_LIMIT * 0.9)
  if (!external && bytes > PROTOBUF_LIMIT)
    throw new InferenceError(
      `the weights take ${(bytes / 2 ** 30).toFixed(2)} GiB, beyond ONNX's 2 GiB single-file limit; export with external data (--external-data)`,
    )
  // Routed variants also output each layer's gates and chosen experts (gates.{i}, chosen.{i}) for routing
  // views; clients that only read logits and present.* ignore them.
  const graph = buildDecoderGraph(cfg, { dtype, routing: isRouted(cfg.attention) })
  const serializeOpts = {
    params: dtype === 'float16' ? halfParams(model.params) : model.params,
    docString: `moas ${cfg.attention} decoder with KV cache`,
    metadata: { 'moas.format_version': String(MODEL_FOLDER_VERSION), 'moas.attention': cfg.attention },
  }
  const files: Record<string, Uint8Array | string> = {}
  let onnx: Uint8Array
  if (external) {
    const split = serializeWithExternalData(graph, { ...serializeOpts, externalDataFile: EXTERNAL_DATA_NAME })
    onnx = split.model
    files[MODEL_FOLDER_FILES.onnxData] = split.data
  } else onnx = serialize(graph, serializeOpts)
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`
  const folder: Record<string, Uint8Array | string> = {
    ...files,
    [MODEL_FOLDER_FILES.config]: json(configJson(model, dtype, external)),
    [MODEL_FOLDER_FILES.generationConfig]: json({ do_sample: false, max_length: cfg.block_size, bos_token_id: null, eos_token_id: null, pad_token_id: 0 }),
    [MODEL_FOLDER_FILES.tokenizer]: json(toHuggingFaceTokenizer(model.tokenizer)),
    [MODEL_FOLDER_FILES.tokenizerConfig]: json({
      tokenizer_class: 'PreTrainedTokenizerFast',
      model_max_length: cfg.block_size,
      padding_side: 'left',
      clean_up_tokenization_spaces: false,
      add_bos_token: false,
      add_eos_token: false,
    }),
    [MODEL_FOLDER_FILES.onnx]: onnx,
    [MODEL_FOLDER_FILES.genaiConfig]: json(genaiConfig(cfg)),
    [MODEL_FOLDER_FILES.readme]: modelCard(
      model,
      dtype,
      onnx.byteLength + ((files[MODEL_FOLDER_FILES.onnxData] as Uint8Array | undefined)?.byteLength ?? 0),
      opts.card ?? {},
    ),
  }
  // The card is left out: it is meant to be edited (a model hub's page), and moas never reads it.
  const { [MODEL_FOLDER_FILES.readme]: _card, ...checked } = folder
  return { ...folder, [MODEL_FOLDER_FILES.checksums]: checksumFile(checked) }
}

function configJson(model: LoadedModel, dtype: ExportDType, external: boolean) {
  const cfg = model.config
  return {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    vocab_size: cfg.vocab_size,
    hidden_size: cfg.n_embd,
    intermediate_size: 4 * cfg.n_embd,
    num_hidden_layers: cfg.n_layer,
    num_attention_heads: cfg.n_head,
    num_key_value_heads: kvHeadsPerLayer(cfg),
    head_dim: cfg.n_embd / cfg.n_head,
    max_position_embeddings: cfg.block_size,
    bos_token_id: null,
    eos_token_id: null,
    pad_token_id: 0,
    tie_word_embeddings: true,
    torch_dtype: dtype,
    // transformers.js fetches onnx/model.onnx_data when told the model uses external data.
    ...(external ? { 'transformers.js_config': { use_external_data_format: true } } : {}),
    moas: {
      format_version: MODEL_FOLDER_VERSION,
      model: cfg,
      dtype,
      kv_cache: kvCacheLayout(cfg),
      ...(external ? { external_data: EXTERNAL_DATA_NAME } : {}),
      checksums: CHECKSUM_FILE,
      ...model.extra,
    },
  }
}

function genaiConfig(cfg: GptConfig) {
  return {
    model: {
      type: 'llama',
      context_length: cfg.block_size,
      vocab_size: cfg.vocab_size,
      bos_token_id: 0,
      eos_token_id: -1,
      pad_token_id: 0,
      decoder: {
        filename: MODEL_FOLDER_FILES.onnx,
        session_options: { log_id: 'onnxruntime-genai', provider_options: [] },
        head_size: cfg.n_embd / cfg.n_head,
        hidden_size: cfg.n_embd,
        num_attention_heads: cfg.n_head,
        num_key_value_heads: kvHeadsPerLayer(cfg),
        num_hidden_layers: cfg.n_layer,
        inputs: {
          input_ids: DECODER_IO.inputIds,
          attention_mask: DECODER_IO.attentionMask,
          position_ids: DECODER_IO.positionIds,
          past_key_names: DECODER_IO.pastKey('%d'),
          past_value_names: DECODER_IO.pastValue('%d'),
        },
        outputs: { logits: DECODER_IO.logits, present_key_names: DECODER_IO.presentKey('%d'), present_value_names: DECODER_IO.presentValue('%d') },
      },
    },
    search: {
      do_sample: false,
      max_length: cfg.block_size,
      num_beams: 1,
      num_return_sequences: 1,
      temperature: 1,
      top_k: 1,
      top_p: 1,
      past_present_share_buffer: false,
    },
  }
}

function modelCard(model: LoadedModel, dtype: ExportDType, onnxBytes: number, card: NonNullable<ExportOptions['card']>): string {
  const cfg = model.config
  const counts = paramCounts(cfg)
  const lines = [
    `# moas ${cfg.attention} character-level language model`,
    '',
    'Exported by moas (`moas export`): a GPT whose attention is',
    `\`${cfg.attention}\`, as one ONNX decoder with a KV cache.`,
    '',
    '| | |',
    '|---|---|',
    `| variant | \`${cfg.attention}\` |`,
    `| layers / width / heads | ${cfg.n_layer} / ${cfg.n_embd} / ${cfg.n_head}${cfg.n_kv_head ? ` (n_kv_head ${cfg.n_kv_head})` : ''} |`,
    `| parameters | ${counts.total.toLocaleString('en-US')} |`,
    `| context (block_size) | ${cfg.block_size} characters |`,
    `| vocabulary | ${cfg.vocab_size} characters |`,
    `| KV cache | ${kvCacheBytesPerToken(cfg, dtype === 'float16' ? 2 : 4).toLocaleString('en-US')} bytes per token (${dtype}; ${kvCacheLayout(cfg)}) |`,
    `| weights and activations | ${dtype}, onnx/model.onnx ${(onnxBytes / 2 ** 20).toFixed(2)} MiB |`,
    `| training data | ${card.trainingData ?? 'not recorded'} |`,
    `| validation loss | ${card.valLoss !== undefined ? `${card.valLoss.toFixed(4)} nats/char (${(card.valLoss / Math.LN2).toFixed(4)} bpc)` : 'not recorded'}${card.steps !== undefined ? ` after ${card.steps} steps` : ''} |`,
    '',
    '## Loading it',
    '',
    '- moas: `moas generate --model THIS_FOLDER --prompt "..."`',
    '- transformers.js: `pipeline("text-generation", THIS_FOLDER)` with `env.localModelPath` / `env.allowRemoteModels = false`,',
    '  or `AutoModelForCausalLM.from_pretrained` + `AutoTokenizer.from_pretrained`.',
    '- plain ONNX Runtime: inputs `input_ids`, `attention_mask`, `position_ids` [batch, new] int64 and',
    `  \`past_key_values.{i}.key|value\` [batch, kv heads, past, head dim] ${dtype} (empty past for the prompt);`,
    '  outputs `logits` and `present.{i}.key|value`, fed back as the next past.',
    '',
    '`model_type` is "llama" only so that generic ONNX clients feed the standard decoder inputs; the',
    'architecture is in the ONNX graph. There are no PyTorch weights in this folder, and no BOS/EOS tokens:',
    'generation stops at the requested length. Contexts longer than block_size are not supported by the graph.',
    '',
  ]
  return lines.join('\n')
}
