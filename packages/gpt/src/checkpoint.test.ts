import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Graph } from '@moas/tensor-core'
import { afterAll, describe, expect, it } from 'vitest'
import { CheckpointError } from './checkpoint'
import { loadCheckpoint, saveCheckpoint } from './checkpoint-dir'
import { type GptConfig, resolveConfig } from './config'
import { buildGpt } from './model'
import { readSafetensors, writeSafetensors } from './safetensors'
import { randomWeights } from './testing/index'

const root = mkdtempSync(join(tmpdir(), 'moas-ckpt-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
let n = 0
const fresh = () => join(root, `ckpt${n++}`)

const tokenizer = { type: 'char', vocab: ['a', 'b', 'c', '\n'] }
const config = (attention = 'gqe', extra: Record<string, unknown> = {}) =>
  resolveConfig({ vocab_size: 4, block_size: 8, n_layer: 2, n_head: 4, n_embd: 8, attention, ...extra })

function weights(cfg: GptConfig, seed: number): Map<string, Float32Array> {
  const g = new Graph('w')
  buildGpt(g, cfg, { batch: 1, seq: 8, training: true, withTargets: false })
  return randomWeights(g, seed) as Map<string, Float32Array>
}

async function loadError(dir: string): Promise<string> {
  try {
    await loadCheckpoint(dir)
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointError)
    return (e as Error).message
  }
  throw new Error('expected loadCheckpoint to fail')
}

const asVersion1 = (d: string) => {
  // a checkpoint from before manifests: no checkpoint_version, empty COMPLETE
  const { checkpoint_version: _v, ...meta } = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'))
  writeFileSync(join(d, 'config.json'), JSON.stringify(meta))
  writeFileSync(join(d, 'COMPLETE'), '')
}

describe('checkpoints', () => {
  it('round-trip config, every tensor, the tokenizer, extra config keys and extra files', async () => {
    for (const [attention, extra] of [
      ['gqe', { gqe_shared_kv: 'own', bias: true }],
      ['moas', {}],
      ['mha', {}],
    ] as const) {
      const dir = fresh()
      const cfg = config(attention, extra)
      const params = weights(cfg, 3)
      await saveCheckpoint(dir, {
        config: cfg,
        params,
        tokenizer,
        extra: { training: { step: 7 } },
        extraFiles: { 'optimizer.safetensors': new Uint8Array([1, 2, 3]), 'onnx/model.onnx': 'x' },
      })
      expect(readdirSync(root)).not.toContain(`${dir.split('/').pop()}.next`)
      const back = await loadCheckpoint(dir)
      expect(back.dir).toBe(dir)
      expect(back.config).toEqual(cfg)
      expect(back.tokenizer).toEqual(tokenizer)
      expect(back.extra).toEqual({ training: { step: 7 } })
      expect(back.files).toEqual(['onnx/model.onnx', 'optimizer.safetensors'])
      expect([...back.params.keys()].sort()).toEqual([...params.keys()].sort())
      for (const [name, w] of params) expect(back.params.get(name), name).toEqual(w)
      // the file a PyTorch user loads: float32, checkpoint names, head stored once
      const json = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))
      expect(json).toEqual({ model: cfg, checkpoint_version: 2, training: { step: 7 } })
      const st = readSafetensors(readFileSync(join(dir, 'model.safetensors'))).tensors
      expect([...st.values()].every((t) => t.dtype === 'float32')).toBe(true)
      expect([...st.keys()].filter((k) => k.includes('wte') || k.includes('lm_head'))).toEqual(['transformer.wte.weight'])
    }
  })

  it('refuses weights holding NaN or Infinity, naming the tensor and the element', async () => {
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      const dir = fresh()
      const cfg = config('mha')
      const params = weights(cfg, 2)
      params.get('transformer.h.1.mlp.c_fc.weight')![5] = bad
      await saveCheckpoint(dir, { config: cfg, params, tokenizer }) // saving is allowed: a diverged run is still inspectable
      expect(await loadError(dir)).toMatch(
        new RegExp(
          `'transformer.h.1.mlp.c_fc.weight' holds 1 non-finite value\\(s\\) \\(first at element 5: ${String(bad).replace('+', '')}\\).*earlier checkpoint`,
        ),
      )
    }
  })

  it('stores float64 parameters as float32', async () => {
    const dir = fresh()
    const cfg = config('mha')
    const params = new Map([...weights(cfg, 1)].map(([k, v]) => [k, Float64Array.from(v)]))
    await saveCheckpoint(dir, { config: cfg, params, tokenizer })
    const back = await loadCheckpoint(dir)
    expect(back.params.get('transformer.wte.weight')).toEqual(Float32Array.from(params.get('transformer.wte.weight')!))
  })

  it('replaces an existing checkpoint atomically and leaves no staging directories', async () => {
    const dir = fresh()
    const cfg = config('mha')
    await saveCheckpoint(dir, { config: cfg, params: weights(cfg, 1), tokenizer, extra: { v: 1 } })
    await saveCheckpoint(dir, { config: cfg, params: weights(cfg, 2), tokenizer, extra: { v: 2 } })
    expect((await loadCheckpoint(dir)).extra).toEqual({ v: 2 })
    expect(existsSync(`${dir}.next`) || existsSync(`${dir}.prev`)).toBe(false)
  })

  describe('recovers the last complete checkpoint after a crash', () => {
    const cfg = config('gqe')
    /** v1 in DIR, and v2 written completely into another directory, ready to be moved into place. */
    async function twoVersions() {
      const dir = fresh()
      const v2 = fresh()
      await saveCheckpoint(dir, { config: cfg, params: weights(cfg, 1), tokenizer, extra: { v: 1 } })
      await saveCheckpoint(v2, { config: cfg, params: weights(cfg, 2), tokenizer, extra: { v: 2 } })
      return { dir, v2 }
    }

    it('crash while writing DIR.next: DIR.next is incomplete, DIR (v1) is used; the next save cleans up', async () => {
      const { dir, v2 } = await twoVersions()
      renameSync(v2, `${dir}.next`)
      rmSync(`${dir}.next/COMPLETE`)
      truncateSync(`${dir}.next/model.safetensors`, 100)
      const back = await loadCheckpoint(dir)
      expect([back.dir, back.extra]).toEqual([dir, { v: 1 }])
      await saveCheckpoint(dir, { config: cfg, params: weights(cfg, 3), tokenizer, extra: { v: 3 } })
      expect((await loadCheckpoint(dir)).extra).toEqual({ v: 3 })
      expect(existsSync(`${dir}.next`)).toBe(false)
    })

    it('crash after DIR.next was completed, before the swap: DIR.next (v2) is the newest and is used', async () => {
      const { dir, v2 } = await twoVersions()
      renameSync(v2, `${dir}.next`)
      const back = await loadCheckpoint(dir)
      expect([back.dir, back.extra]).toEqual([`${dir}.next`, { v: 2 }])
    })

    it('crash between DIR → DIR.prev and DIR.next → DIR: v2 from DIR.next; a save finishes the swap first', async () => {
      const { dir, v2 } = await twoVersions()
      renameSync(dir, `${dir}.prev`)
      renameSync(v2, `${dir}.next`)
      expect((await loadCheckpoint(dir)).extra).toEqual({ v: 2 })
      // the next save completes the interrupted swap, then writes v3
      await saveCheckpoint(dir, { config: cfg, params: weights(cfg, 3), tokenizer, extra: { v: 3 } })
      expect((await loadCheckpoint(dir)).extra).toEqual({ v: 3 })
      expect(existsSync(`${dir}.prev`) || existsSync(`${dir}.next`)).toBe(false)
    })

    it('crash while removing DIR.prev: DIR (v2) is used', async () => {
      const { dir, v2 } = await twoVersions()
      renameSync(dir, `${dir}.prev`)
      renameSync(v2, dir)
      rmSync(`${dir}.prev/model.safetensors`)
      expect((await loadCheckpoint(dir)).extra).toEqual({ v: 2 })
    })

    it('only DIR.prev left (DIR.next incomplete): DIR.prev (v1) is used, and restored by the next save', async () => {
      const { dir, v2 } = await twoVersions()
      renameSync(dir, `${dir}.prev`)
      renameSync(v2, `${dir}.next`)
      rmSync(`${dir}.next/COMPLETE`)
      const back = await loadCheckpoint(dir)
      expect([back.dir, back.extra]).toEqual([`${dir}.prev`, { v: 1 }])
      await expect(saveCheckpoint(dir, { config: { ...cfg, n_layer: 0 }, params: weights(cfg, 3), tokenizer })).rejects.toThrow(
        /n_layer must be a positive integer/,
      )
      expect((await loadCheckpoint(dir)).extra, 'a rejected save changes nothing').toEqual({ v: 1 })
    })
  })

  describe('reports broken checkpoints clearly', () => {
    const cfg = config('gqe')
    // These tests edit the files after saving to reach each decoding check; an empty COMPLETE (a checkpoint
    // from before manifests) turns the checksum verification off so the decoder's own message shows.
    async function saved() {
      const dir = fresh()
      await saveCheckpoint(dir, { config: cfg, params: weights(cfg, 1), tokenizer })
      asVersion1(dir)
      return dir
    }

    it('any byte changed after the save is caught by the manifest in COMPLETE, naming the file', async () => {
      const dir = fresh()
      await saveCheckpoint(dir, {
        config: cfg,
        params: weights(cfg, 1),
        tokenizer,
        extraFiles: { 'notes.txt': 'a', 'log.txt': 'b' },
        mutableFiles: ['log.txt'],
      })
      expect((await loadCheckpoint(dir)).files).toEqual(['log.txt', 'notes.txt'])
      writeFileSync(join(dir, 'log.txt'), 'appended') // mutable: not verified
      await loadCheckpoint(dir)
      for (const name of ['model.safetensors', 'config.json', 'tokenizer.json', 'notes.txt']) {
        const path = join(dir, name)
        const original = readFileSync(path)
        const bad = Uint8Array.from(original)
        bad[Math.floor(bad.length / 2)] ^= 0x01 // one bit: still valid JSON or floats, but not the saved file
        writeFileSync(path, bad)
        expect(await loadError(dir), name).toMatch(new RegExp(`${name}: changed since the checkpoint was saved .*use an earlier copy`))
        writeFileSync(path, original)
      }
      writeFileSync(join(dir, 'COMPLETE'), '{"format": "moas-checkpoint", "sha')
      expect(await loadError(dir)).toMatch(/manifest is corrupt/)
      // deleting the manifest does not switch the checks off (a flipped byte then goes unnoticed otherwise)
      rmSync(join(dir, 'COMPLETE'))
      expect(await loadError(dir)).toMatch(
        /COMPLETE: missing, but the checkpoint was saved with a checksum manifest there \(version 2\); its files cannot be verified, so it is not trusted/,
      )
    })
    const rewrite = (dir: string, edit: (t: Map<string, any>) => void) => {
      const { tensors } = readSafetensors(readFileSync(join(dir, 'model.safetensors')))
      edit(tensors)
      writeFileSync(join(dir, 'model.safetensors'), writeSafetensors(tensors))
    }

    it('no checkpoint', async () => {
      expect(await loadError(join(root, 'nothing'))).toMatch(
        /^no checkpoint at .*nothing \(and no .*nothing\.next or .*nothing\.prev left by an interrupted save\)$/,
      )
    })

    it('missing, extra and misshaped tensors, all in one message', async () => {
      const dir = await saved()
      rewrite(dir, (t) => {
        t.delete('transformer.h.1.attn.router.weight')
        t.delete('transformer.h.0.attn.shared_q_proj.weight')
        t.set('lm_head.weight', t.get('transformer.wte.weight'))
        t.set('transformer.h.0.attn.c_proj.weight', { dtype: 'float32', shape: [8, 16], data: new Float32Array(128) })
      })
      expect(await loadError(dir)).toBe(
        `${dir}/model.safetensors: tensors do not match the config (attention 'gqe', n_layer 2, n_embd 8, n_head 4, n_kv_head 2, bias false): ` +
          'missing 2 tensors: transformer.h.0.attn.shared_q_proj.weight, transformer.h.1.attn.router.weight; ' +
          'unexpected 1 tensor: lm_head.weight (the output head is tied to transformer.wte.weight and not stored); ' +
          "wrong shape: 'transformer.h.0.attn.c_proj.weight' is [8,16], expected [8,8]",
      )
    })

    it('wrong dtype', async () => {
      const dir = await saved()
      rewrite(dir, (t) => {
        const w = t.get('transformer.wte.weight')
        t.set('transformer.wte.weight', { dtype: 'float64', shape: w.shape, data: Float64Array.from(w.data) })
      })
      expect(await loadError(dir)).toBe(
        `${dir}/model.safetensors: wrong dtype: 'transformer.wte.weight' is float64; moas checkpoints store float32 (convert with tensor.float() in PyTorch)`,
      )
    })

    it('truncated or corrupted weights', async () => {
      const dir = await saved()
      const size = readFileSync(join(dir, 'model.safetensors')).length
      truncateSync(join(dir, 'model.safetensors'), size - 10)
      expect(await loadError(dir)).toMatch(
        new RegExp(`^${dir}/model.safetensors: tensor '.*': truncated file: its data ends at byte \\d+ of the data section, which holds only \\d+ bytes$`),
      )
      writeFileSync(join(dir, 'model.safetensors'), 'garbage!garbage!')
      expect(await loadError(dir)).toMatch(/model\.safetensors: bad header: its declared length \d+ is implausible/)
      rmSync(join(dir, 'model.safetensors'))
      expect(await loadError(dir)).toBe(`${dir}/model.safetensors: missing; a checkpoint needs the weights in model.safetensors`)
    })

    it('bad config.json and tokenizer.json', async () => {
      const dir = await saved()
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ model: { ...cfg, attention: 'gqe-hardonly' } }))
      expect(await loadError(dir)).toMatch(
        new RegExp(`^${dir}/config.json: invalid model config: unknown attention variant 'gqe-hardonly' \\(did you mean 'gqe-hard-only'\\?\\)`),
      )
      writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg))
      expect(await loadError(dir)).toBe(`${dir}/config.json: expected {"model": {...model config}, ...}; the model config is missing`)
      writeFileSync(join(dir, 'config.json'), '{"model": ')
      expect(await loadError(dir)).toMatch(/config\.json: not valid JSON/)
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ model: cfg }))
      rmSync(join(dir, 'tokenizer.json'))
      expect(await loadError(dir)).toBe(`${dir}/tokenizer.json: missing; a checkpoint holds config.json, model.safetensors, tokenizer.json`)
    })

    it('save refuses parameters that do not fit the config, and unsafe extra file names', async () => {
      const cfgMha = config('mha')
      const p = weights(cfgMha, 1)
      p.set('transformer.wpe.weight', new Float32Array(3))
      await expect(saveCheckpoint(fresh(), { config: cfgMha, params: p, tokenizer })).rejects.toThrow(
        "saveCheckpoint: tensors do not match the config (attention 'mha', n_layer 2, n_embd 8, n_head 4, bias false): wrong shape: 'transformer.wpe.weight' is 3 values, expected [8,8] (64 values)",
      )
      await expect(saveCheckpoint(fresh(), { config: cfgMha, params: weights(cfgMha, 1), tokenizer, extraFiles: { '../x': 'y' } })).rejects.toThrow(
        /extra file name '\.\.\/x' must be a relative path/,
      )
      await expect(saveCheckpoint(fresh(), { config: cfgMha, params: weights(cfgMha, 1), tokenizer, extraFiles: { 'config.json': 'y' } })).rejects.toThrow(
        /would overwrite a checkpoint file/,
      )
      await expect(saveCheckpoint(fresh(), { config: cfgMha, params: weights(cfgMha, 1), tokenizer: undefined })).rejects.toThrow(/a tokenizer is required/)
    })
  })
})
