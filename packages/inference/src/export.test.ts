/** Model folders: export, read back, run; float16 storage; every broken folder is refused clearly. */

import type { LoadedModel } from '@moas/gpt'
import {
  buildLogitsGraph,
  CharTokenizer,
  fromHuggingFaceTokenizer,
  type GptConfig,
  kvHeadsPerLayer,
  resolveConfig,
  toHuggingFaceTokenizer,
  type Variant,
} from '@moas/gpt'
import { randomWeights } from '@moas/gpt/testing'
import { float16Bits, float16Values } from '@moas/tensor-core'
import { describe, expect, it } from 'vitest'
import { checksumFile } from './checksums'
import { DecoderSession } from './decoder'
import { exportModelFiles, MODEL_FOLDER_FILES } from './export'
import { generate } from './generate'
import { memoryFolderReader, modelFolderWeights, openModelFolder, readModelFolder } from './model-folder'

const tokenizer = CharTokenizer.fromText('the quick brown fox, jumps! 0123')
const model = (attention: Variant, extra: Record<string, unknown> = {}): LoadedModel => {
  const config: GptConfig = resolveConfig({ vocab_size: tokenizer.vocabSize, block_size: 32, n_layer: 2, n_head: 4, n_embd: 16, attention, ...extra })
  return { config, params: randomWeights(buildLogitsGraph(config), 5) as Map<string, Float32Array>, tokenizer, extra: {}, where: 'test' }
}
const reader = memoryFolderReader
/** A folder whose files were swapped and whose SHA256SUMS was then written anew: the checks past the checksums still run. */
const resummed = (files: Record<string, Uint8Array | string>) => {
  const { [MODEL_FOLDER_FILES.checksums]: _old, [MODEL_FOLDER_FILES.readme]: _card, ...rest } = files
  return { ...files, [MODEL_FOLDER_FILES.checksums]: checksumFile(rest) }
}

describe('model folder export', () => {
  for (const v of ['mha', 'moas', 'moas-topk', 'gqe', 'gqe-no-shared'] as const) {
    it(`${v}: the exported ONNX graph generates exactly what the in-memory model does`, async () => {
      const m = model(v)
      const files = exportModelFiles(m)
      expect(Object.keys(files).sort()).toEqual(
        Object.values(MODEL_FOLDER_FILES)
          .filter((f) => f !== MODEL_FOLDER_FILES.onnxData)
          .sort(),
      )
      const folder = await readModelFolder(reader(files), 'mem')
      expect(folder.config).toEqual(m.config)
      const exported = await openModelFolder(folder)
      const direct = await DecoderSession.create(m)
      const prompts = ['the quick', 'fox']
      const a = await generate(exported, folder.tokenizer, prompts, { temperature: 0, maxNewTokens: 12 })
      const b = await generate(direct, tokenizer, prompts, { temperature: 0, maxNewTokens: 12 })
      expect(a.completions).toEqual(b.completions)
      const cfg = JSON.parse(files[MODEL_FOLDER_FILES.config] as string)
      expect(cfg).toMatchObject({
        model_type: 'llama',
        vocab_size: m.config.vocab_size,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: kvHeadsPerLayer(m.config),
        head_dim: 4,
        max_position_embeddings: 32,
      })
      expect(files[MODEL_FOLDER_FILES.readme]).toContain(`moas ${v} character-level language model`)
      await exported.release()
      await direct.release()
    })
  }

  it('float16: weights, activations and the KV cache in float16; half the file and cache, logits near float32', async () => {
    const m = model('gqe', { n_embd: 128 }) // big enough for the weights to dominate the file
    const f32 = exportModelFiles(m)
    const f16 = exportModelFiles(m, { dtype: 'float16' })
    const size = (f: Record<string, Uint8Array | string>) => (f[MODEL_FOLDER_FILES.onnx] as Uint8Array).byteLength
    const weightBytes = [...m.params.values()].reduce((n, w) => n + w.length * 4, 0)
    expect((size(f32) - size(f16)) / (weightBytes / 2)).toBeGreaterThan(0.97) // the weights take half the bytes
    const run = async (files: Record<string, Uint8Array | string>) => {
      const folder = await readModelFolder(reader(files), 'mem')
      const s = await openModelFolder(folder)
      const out = await s.prefill([[...tokenizer.encode('the quick brown')]])
      const r = { logits: out.logits, dtype: s.dtype, bytes: s.cacheBytes }
      await s.release()
      return r
    }
    const [a, b] = [await run(f32), await run(f16)]
    expect([a.dtype, b.dtype]).toEqual(['float32', 'float16'])
    expect(b.bytes * 2).toBe(a.bytes)
    let diff = 0
    let scale = 0
    for (let i = 0; i < a.logits.length; i++) {
      diff = Math.max(diff, Math.abs(a.logits[i] - b.logits[i]))
      scale = Math.max(scale, Math.abs(a.logits[i]))
    }
    expect(diff).toBeGreaterThan(0) // it really computes in float16
    expect(diff / scale).toBeLessThan(2e-2)
    expect(JSON.parse(f16[MODEL_FOLDER_FILES.config] as string).moas.dtype).toBe('float16')
  })

  it('external data: the weights go to onnx/model.onnx_data, and the folder generates the same text', async () => {
    const m = model('moas', { n_embd: 128 })
    const inline = exportModelFiles(m)
    const split = exportModelFiles(m, { externalData: true })
    const weightBytes = [...m.params.values()].reduce((n, w) => n + w.byteLength, 0)
    const size = (f: Record<string, Uint8Array | string>, name: string) => (f[name] as Uint8Array).byteLength
    expect(size(split, MODEL_FOLDER_FILES.onnxData)).toBeGreaterThanOrEqual(weightBytes)
    expect(size(inline, MODEL_FOLDER_FILES.onnx) - size(split, MODEL_FOLDER_FILES.onnx)).toBeGreaterThan(weightBytes * 0.99) // the weights left model.onnx
    expect(JSON.parse(split[MODEL_FOLDER_FILES.config] as string)).toMatchObject({
      'transformers.js_config': { use_external_data_format: true },
      moas: { external_data: 'model.onnx_data' },
    })
    const texts = []
    for (const files of [inline, split]) {
      const s = await openModelFolder(await readModelFolder(reader(files), 'mem'))
      texts.push((await generate(s, tokenizer, ['the quick'], { temperature: 0, maxNewTokens: 12 })).completions[0])
      expect(s.cachedHeads).toBeGreaterThan(0)
      await s.release()
    }
    expect(texts[1]).toBe(texts[0])
    const without = Object.fromEntries(Object.entries(split).filter(([k]) => k !== MODEL_FOLDER_FILES.onnxData))
    await expect(readModelFolder(reader(without), 'm')).rejects.toThrow(/onnx\/model.onnx_data is missing/)
  })

  it("graph 'weights': the folder's weights read back exactly (float32, float16, external data) and generate what the exported graph does", async () => {
    const prompts = ['the quick', 'fox']
    for (const [v, exportOpts] of [
      ['moas-topk', {}],
      ['gqe', { dtype: 'float16' }],
      ['mha', { externalData: true }],
    ] as const) {
      const m = model(v)
      const folder = await readModelFolder(reader(exportModelFiles(m, exportOpts)), 'mem')
      const weights = modelFolderWeights(folder)
      expect([...weights.keys()].sort()).toEqual([...m.params.keys()].sort())
      for (const [name, w] of m.params) {
        // float16 exports hold the weights rounded to float16: read back exactly those values
        const want = 'dtype' in exportOpts ? float16Values(float16Bits(w)) : w
        expect(weights.get(name), `${v} ${name}`).toEqual(want)
      }
      const exported = await openModelFolder(folder)
      const rebuilt = await openModelFolder(folder, { graph: 'weights' })
      expect(rebuilt.dtype).toBe(exported.dtype)
      const a = await generate(exported, folder.tokenizer, prompts, { temperature: 0, maxNewTokens: 12 })
      const b = await generate(rebuilt, folder.tokenizer, prompts, { temperature: 0, maxNewTokens: 12 })
      expect(b.completions, v).toEqual(a.completions)
      expect(rebuilt.cacheBytes).toBe(exported.cacheBytes)
      await exported.release()
      await rebuilt.release()
    }
  })

  it("graph 'weights' takes the memory-efficient core; the exported graph refuses a kernel choice; a foreign model.onnx is named", async () => {
    const m = model('gqe')
    const files = exportModelFiles(m)
    const folder = await readModelFolder(reader(files), 'mem')
    const prompt = [[...tokenizer.encode('the quick')]]
    const composed = await openModelFolder(folder, { graph: 'weights' })
    const efficient = await openModelFolder(folder, { graph: 'weights', attention: 'memory-efficient' })
    const [x, y] = [await composed.prefill(prompt), await efficient.prefill(prompt)]
    let diff = 0
    for (let i = 0; i < x.logits.length; i++) diff = Math.max(diff, Math.abs(x.logits[i] - y.logits[i]))
    expect(diff).toBeLessThan(1e-4)
    await composed.release()
    await efficient.release()
    await expect(openModelFolder(folder, { attention: 'memory-efficient' })).rejects.toThrow(/runs the kernel it was exported with.*graph: 'weights'/)
    await expect(openModelFolder(folder, { graph: 'rebuilt' as 'weights' })).rejects.toThrow(/graph 'rebuilt': use 'exported'.*or 'weights'/)
    const other = exportModelFiles(model('mha', { n_embd: 32 }))
    const foreign = await readModelFolder(reader(resummed({ ...files, [MODEL_FOLDER_FILES.onnx]: other[MODEL_FOLDER_FILES.onnx] })), 'm')
    await expect(openModelFolder(foreign, { graph: 'weights' })).rejects.toThrow(
      /^m\/onnx\/model.onnx: (no weight|weight '.*' is \[).*not this config's moas export/,
    )
  })

  it('tokenizer.json is character level with the same ids, and reads back', () => {
    const json = toHuggingFaceTokenizer(tokenizer) as { model: { vocab: Record<string, number>; merges: unknown[] } }
    expect(json.model.vocab[tokenizer.vocab[3]]).toBe(3)
    expect(json.model.merges).toEqual([])
    expect(fromHuggingFaceTokenizer(json).vocab).toEqual(tokenizer.vocab)
    expect(() => fromHuggingFaceTokenizer({ model: { type: 'BPE', vocab: { a: 0 }, merges: ['a b'] } })).toThrow(/merges/)
    expect(() => fromHuggingFaceTokenizer({ model: { type: 'WordPiece', vocab: {} } })).toThrow(/BPE/)
  })

  it('refuses a missing, foreign or mismatched file with the problem and the fix', async () => {
    const files = exportModelFiles(model('mha'))
    const without = (name: string) => Object.fromEntries(Object.entries(files).filter(([k]) => k !== name))
    await expect(readModelFolder(reader(without(MODEL_FOLDER_FILES.onnx)), 'm')).rejects.toThrow(/onnx\/model.onnx is missing.*export it again/)
    await expect(readModelFolder(reader({ ...files, [MODEL_FOLDER_FILES.config]: '{"model_type": "llama"}' }), 'm')).rejects.toThrow(/no "moas" key/)
    await expect(readModelFolder(reader({ ...files, [MODEL_FOLDER_FILES.config]: '{' }), 'm')).rejects.toThrow(/not valid JSON/)
    const otherTok = toHuggingFaceTokenizer(CharTokenizer.fromText('xyz'))
    await expect(readModelFolder(reader(resummed({ ...files, [MODEL_FOLDER_FILES.tokenizer]: JSON.stringify(otherTok) })), 'm')).rejects.toThrow(
      /3 characters but config.json's vocab_size is/,
    )
    // onnx/model.onnx of another model: caught by the probe
    const other = exportModelFiles(model('gqa'))
    const folder = await readModelFolder(reader(resummed({ ...files, [MODEL_FOLDER_FILES.onnx]: other[MODEL_FOLDER_FILES.onnx] })), 'm')
    await expect(openModelFolder(folder)).rejects.toThrow(/onnx\/model.onnx.*different models \(export again\)/)
    const garbage = await readModelFolder(reader(resummed({ ...files, [MODEL_FOLDER_FILES.onnx]: new Uint8Array([1, 2, 3, 4]) })), 'm')
    await expect(openModelFolder(garbage)).rejects.toThrow(/ONNX Runtime cannot load it/)
    expect(() => exportModelFiles(model('mha'), { dtype: 'int8' as 'float16' })).toThrow(/unknown export dtype 'int8'/)
  })

  it('SHA256SUMS: a flipped byte in any file it lists, a missing or foreign-listed file, or a deleted SHA256SUMS is refused by name; the card may be edited', async () => {
    const files = exportModelFiles(model('mha'))
    const bytes = (f: Uint8Array | string) => (typeof f === 'string' ? new TextEncoder().encode(f) : f.slice())
    const listed = Object.keys(files).filter((f) => f !== MODEL_FOLDER_FILES.checksums && f !== MODEL_FOLDER_FILES.readme)
    expect(
      String(files[MODEL_FOLDER_FILES.checksums])
        .trim()
        .split('\n')
        .map((l) => l.slice(66))
        .sort(),
    ).toEqual([...listed].sort())
    for (const path of listed) {
      const damaged = bytes(files[path])
      damaged[Math.floor(damaged.length / 2)] ^= 0x01
      await expect(readModelFolder(reader({ ...files, [path]: damaged }), 'm'), path).rejects.toThrow(
        path === MODEL_FOLDER_FILES.config
          ? /m\/config.json: (changed since export|not valid JSON)|moas/ // a flipped byte may break the JSON before the sums are read
          : new RegExp(`^m/${path.replace('.', '\\.')}: changed since export \\(its sha256 does not match SHA256SUMS\\).*copy or export the folder again`),
      )
    }
    const { [MODEL_FOLDER_FILES.checksums]: _sums, ...unsummed } = files
    await expect(readModelFolder(reader(unsummed), 'm')).rejects.toThrow(/m: SHA256SUMS is missing/)
    const sums = String(files[MODEL_FOLDER_FILES.checksums])
    const tokLine = sums.split('\n').find((l) => l.endsWith(MODEL_FOLDER_FILES.tokenizer))!
    await expect(readModelFolder(reader({ ...files, [MODEL_FOLDER_FILES.checksums]: sums.replace(`${tokLine}\n`, '') }), 'm')).rejects.toThrow(
      /m\/tokenizer.json: not listed in SHA256SUMS/,
    )
    await expect(readModelFolder(reader({ ...files, [MODEL_FOLDER_FILES.checksums]: 'garbage\n' }), 'm')).rejects.toThrow(/m\/SHA256SUMS: unreadable \(line 1/)
    const edited = await readModelFolder(reader({ ...files, [MODEL_FOLDER_FILES.readme]: '# my own card\n' }), 'm')
    expect(edited.config.attention).toBe('mha')
  })
})
