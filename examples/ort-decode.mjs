#!/usr/bin/env node
// Greedy decoding of a `moas export` model folder with nothing but onnxruntime-node: no @moas import.
// It reads what any ONNX decoder client reads (config.json, tokenizer.json, onnx/model.onnx), starts
// from an empty KV cache, feeds the prompt once, then one token per step with the cache.
//
//   node examples/ort-decode.mjs MODEL_DIR "prompt text" [new tokens = 100]
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import ort from 'onnxruntime-node'

const [dir, prompt, count = '100'] = process.argv.slice(2)
if (!dir || prompt === undefined) {
  console.error('usage: node examples/ort-decode.mjs MODEL_DIR "prompt" [new tokens]')
  process.exit(2)
}
const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))
const vocab = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')).model.vocab // character -> id
const chars = Object.fromEntries(Object.entries(vocab).map(([ch, id]) => [id, ch]))
const session = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'))

const layers = config.num_hidden_layers
const headDim = config.head_dim
// A float16 export takes and returns a float16 cache, and its logits are float16 bit patterns.
const half = config.torch_dtype === 'float16'
/** @param {number[]} values @param {number[]} dims */
const int64 = (values, dims) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims)
/** @param {number} h */
const halfToFloat = (h) => {
  const e = (h >> 10) & 0x1f
  const m = h & 0x3ff
  const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15)
  return h & 0x8000 ? -v : v
}
/** @type {Record<string, ort.Tensor>} */
let past = {}
for (let i = 0; i < layers; i++) {
  for (const kind of ['key', 'value'])
    past[`past_key_values.${i}.${kind}`] = new ort.Tensor(half ? 'float16' : 'float32', half ? new Uint16Array(0) : new Float32Array(0), [
      1,
      config.num_key_value_heads,
      0,
      headDim,
    ])
}

let ids = [...prompt].map((ch) => {
  if (!(ch in vocab)) throw new Error(`character ${JSON.stringify(ch)} is not in the model's vocabulary`)
  return vocab[ch]
})
let position = 0
let text = ''
const context = config.max_position_embeddings
for (let step = 0; step < Number(count); step++) {
  // The position embedding has max_position_embeddings rows: a position past them does not exist.
  if (position + ids.length > context) {
    console.error(
      `stopped after ${step} new tokens: the model's context is ${context} positions (max_position_embeddings in config.json); at most ${context - [...prompt].length + 1} new tokens fit after this prompt`,
    )
    break
  }
  const out = await session.run({
    input_ids: int64(ids, [1, ids.length]),
    attention_mask: int64(Array(position + ids.length).fill(1), [1, position + ids.length]),
    position_ids: int64(
      ids.map((_, t) => position + t),
      [1, ids.length],
    ),
    ...past,
  })
  position += ids.length
  const V = config.vocab_size
  const raw = /** @type {Float32Array | Uint16Array} */ (out.logits.data).subarray((ids.length - 1) * V, ids.length * V)
  const logits = half ? Array.from(raw, halfToFloat) : raw
  let best = 0
  for (let v = 1; v < V; v++) if (logits[v] > logits[best]) best = v
  text += chars[best]
  ids = [best]
  past = {}
  for (let i = 0; i < layers; i++) {
    past[`past_key_values.${i}.key`] = out[`present.${i}.key`]
    past[`past_key_values.${i}.value`] = out[`present.${i}.value`]
  }
}
process.stdout.write(`${JSON.stringify({ prompt, completion: text })}\n`)
