import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CharTokenizer, resolveConfig } from '@moas/gpt'
import { afterEach, describe, expect, it } from 'vitest'
import { paperSplit } from './data/split'
import { syntheticCorpus } from './data/synthetic'
import { DivergenceError, TrainError } from './errors'
import { type Dataset, makeRunConfig, TRAIN_PRESETS } from './presets'
import { readLog, readRun, type TrainOptions, train } from './train'

const temps: string[] = []
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'moas-train-'))
  temps.push(d)
  return d
}
afterEach(() => temps.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })))

const text = syntheticCorpus({ seed: 3, chars: 20_000 })
const tokenizer = CharTokenizer.fromText(text)
const split = paperSplit(text)
const data: Dataset = { name: 'synthetic', tokenizer, train: tokenizer.encode(split.train), val: tokenizer.encode(split.val), source: 'test' }

/** A tiny moas model with dropout (so resume must reproduce the masks) and the router's balance loss. */
function options(out: string, over: Partial<TrainOptions> & { steps: number; lr?: number }): TrainOptions {
  const model = resolveConfig({ vocab_size: tokenizer.vocabSize, block_size: 16, n_layer: 2, n_head: 2, n_embd: 16, dropout: 0.1, attention: 'moas' })
  const run = makeRunConfig({ ...TRAIN_PRESETS.smoke, batch_size: 4, eval_interval: 3, eval_iters: 2, lr: over.lr ?? 3e-3 }, model, data, 7)
  return { out, run, data, checkpointInterval: 0, ...over }
}

const paramsOf = async (dir: string) => (await readRun(dir)).checkpoint.params

describe('train', () => {
  it('is deterministic and resumes exactly: N steps = N/2 + resume N/2 (losses, evals, params, moments)', async () => {
    const a = join(tempDir(), 'a')
    const b = join(tempDir(), 'b')
    const c = join(tempDir(), 'c')
    const full = await train(options(a, { steps: 8 }))
    const again = await train(options(b, { steps: 8 }))
    expect(again.records.map((r) => r.loss)).toEqual(full.records.map((r) => r.loss))

    await train(options(c, { steps: 4 }))
    const resumed = await train(options(c, { steps: 8, resume: true }))
    expect(resumed.status).toBe('finished')
    expect(resumed.records.map((r) => r.loss)).toEqual(full.records.map((r) => r.loss))
    expect(resumed.records.map((r) => r.grad_norm)).toEqual(full.records.map((r) => r.grad_norm))
    const evals = (rs: typeof full.records) => rs.filter((r) => r.step % 3 === 0).map((r) => r.val_loss)
    expect(evals(resumed.records)).toEqual(evals(full.records))
    expect(full.finalValLoss).toBe(resumed.finalValLoss)
    const [pa, pc] = [await readRun(a), await readRun(c)]
    for (const [name, v] of pa.checkpoint.params) expect(pc.checkpoint.params.get(name), name).toEqual(v)
    for (const [name, v] of pa.optimizer.v) expect(pc.optimizer.v.get(name), name).toEqual(v)
    expect(pc.state).toMatchObject({ step: 8, steps: 8, finished: true })
    // The log of the resumed run reads as one run: steps 1..8, each once.
    expect(readLog(join(c, 'log.jsonl')).map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(full.records[7].loss).toBeLessThan(full.records[0].loss)
  })

  it('a moas-kv control (kv_route random) resumes exactly too: its levels are drawn per update, not from a stream that a restart would reset', async () => {
    const model = resolveConfig({
      vocab_size: tokenizer.vocabSize,
      block_size: 16,
      n_layer: 2,
      n_head: 4,
      n_embd: 16,
      dropout: 0.1,
      attention: 'moas-kv',
      kv_route: 'random',
      kv_route_shares: [0.3, 0.3, 0.4],
    })
    const run = makeRunConfig({ ...TRAIN_PRESETS.smoke, batch_size: 4, eval_interval: 3, eval_iters: 2, lr: 3e-3 }, model, data, 7)
    const [a, c] = [join(tempDir(), 'a'), join(tempDir(), 'c')]
    const full = await train({ out: a, run, data, checkpointInterval: 0, steps: 6 })
    await train({ out: c, run, data, checkpointInterval: 0, steps: 3 })
    const resumed = await train({ out: c, run, data, checkpointInterval: 0, steps: 6, resume: true })
    expect(resumed.records.map((r) => r.loss)).toEqual(full.records.map((r) => r.loss))
    expect(resumed.records.at(-1)!.val_loss).toBe(full.records.at(-1)!.val_loss)
    expect(full.records.at(-1)!.routing!.entropy).toEqual([0, 0]) // fed one-hot choices
  })

  it("a model whose vocab_size is not the data's is refused, with the fix for the command line and for code", async () => {
    const o = options(join(tempDir(), 'v'), { steps: 1 })
    const run = { ...o.run, model: { ...o.run.model, vocab_size: tokenizer.vocabSize + 1 } }
    await expect(train({ ...o, run })).rejects.toThrow(
      `the tokenizer has ${tokenizer.vocabSize} symbols but the model's vocab_size is ${tokenizer.vocabSize + 1} (one embedding row per symbol): on the command line drop --set vocab_size (it follows the data); in code build the model config from the data, modelConfig(preset, data.tokenizer.vocabSize)`,
    )
  })

  it('never saves non-finite state: an update that overflows stops non-zero and leaves the last finite checkpoint', async () => {
    const out = join(tempDir(), 'overflow')
    // --lr 3e38: the first update's loss and gradient are finite, the parameters after it are not
    const err = await train(options(out, { steps: 2, checkpointInterval: 1, lr: 3e38 })).catch((e) => e)
    expect(err, err.message).toBeInstanceOf(DivergenceError)
    expect(err.message).toMatch(/^training diverged: parameter \S+\[\d+\] is (-?Infinity|NaN) after step 1; not saved\. The last good checkpoint \(step 0\)/)
    const after = await readRun(out)
    expect(after.state.step).toBe(0)
    for (const m of [after.checkpoint.params, after.optimizer.m, after.optimizer.v])
      for (const [name, v] of m) expect(v.every(Number.isFinite), name).toBe(true)
  })

  it('refuses to resume from an optimizer state with a negative second moment (it would turn the weights to NaN)', async () => {
    const out = join(tempDir(), 'negative-v')
    await train(options(out, { steps: 2 }))
    const { readSafetensors, writeSafetensors } = await import('@moas/gpt')
    const path = join(out, 'optimizer.safetensors')
    const { tensors, metadata } = readSafetensors(readFileSync(path), path)
    const [name, t] = [...tensors].find(([n]) => n.includes('.v.'))!
    ;(t.data as Float32Array)[0] = -1
    const bytes = writeSafetensors(new Map([...tensors, [name, t]]), metadata)
    writeFileSync(path, bytes)
    // a consistent manifest, as a writer with the bug would leave it: the checksums pass, the values do not
    const manifest = JSON.parse(readFileSync(join(out, 'COMPLETE'), 'utf8'))
    manifest.sha256['optimizer.safetensors'] = createHash('sha256').update(bytes).digest('hex')
    writeFileSync(join(out, 'COMPLETE'), JSON.stringify(manifest))
    const err = await train(options(out, { steps: 3, resume: true })).catch((e) => e)
    expect(String(err.message)).toMatch(
      new RegExp(`optimizer\\.safetensors: '${name.replace(/[.]/g, '\\.')}'\\[0\\] is -1; Adam's second moment must be finite and >= 0`),
    )
  })

  it('a version-1 trainer state (causal masks drawn in full) keeps drawing them in full, exactly, across resumes', async () => {
    const a = join(tempDir(), 'a')
    await train(options(a, { steps: 2 }))
    const state = JSON.parse(readFileSync(join(a, 'trainer_state.json'), 'utf8'))
    expect(state).toMatchObject({ version: 2, noise_layout: 'causal-rows' })
    // Rewrite it as the trainer before noise layouts wrote it (and the checkpoint manifest's checksum).
    delete state.noise_layout
    state.version = 1
    const text = `${JSON.stringify(state, null, 2)}\n`
    writeFileSync(join(a, 'trainer_state.json'), text)
    const manifest = JSON.parse(readFileSync(join(a, 'COMPLETE'), 'utf8'))
    manifest.sha256['trainer_state.json'] = createHash('sha256').update(text).digest('hex')
    writeFileSync(join(a, 'COMPLETE'), JSON.stringify(manifest))
    const b = join(tempDir(), 'b')
    cpSync(a, b, { recursive: true })
    const straight = await train(options(a, { steps: 4, resume: true }))
    expect((await readRun(a)).state).toMatchObject({ version: 2, noise_layout: 'full', step: 4 })
    await train(options(b, { steps: 3, resume: true }))
    const twice = await train(options(b, { steps: 4, resume: true }))
    expect(twice.records.map((r) => r.loss)).toEqual(straight.records.map((r) => r.loss))
    // ...and the fresh run, drawing only the rows' visible keys, took other masks from step 3 on.
    const fresh = await train(options(join(tempDir(), 'c'), { steps: 4 }))
    expect(fresh.records.slice(0, 2).map((r) => r.loss)).toEqual(straight.records.slice(0, 2).map((r) => r.loss))
    expect(fresh.records[2].loss).not.toBe(straight.records[2].loss)
  })

  it('Ctrl-C (abort) saves a checkpoint; resuming it reproduces the uninterrupted run', async () => {
    const a = join(tempDir(), 'a')
    const b = join(tempDir(), 'b')
    const full = await train(options(a, { steps: 6 }))
    const ctl = new AbortController()
    const stopped = await train(options(b, { steps: 6, signal: ctl.signal, onRecord: (r) => r.step === 2 && ctl.abort() }))
    expect(stopped).toMatchObject({ status: 'interrupted', step: 2 })
    expect((await readRun(b)).state).toMatchObject({ step: 2, finished: false })
    const resumed = await train(options(b, { steps: 6, resume: true }))
    expect(resumed.records.map((r) => r.loss)).toEqual(full.records.map((r) => r.loss))
    expect(await paramsOf(b)).toEqual(await paramsOf(a))
  })

  it('resumes exactly after a crash in the middle of a save, in either half of the swap', async () => {
    const a = join(tempDir(), 'a')
    const full = await train(options(a, { steps: 6, checkpointInterval: 2 }))
    for (const crash of ['staging-incomplete', 'swapped-out'] as const) {
      const dir = join(tempDir(), 'run')
      await train(options(dir, { steps: 4, checkpointInterval: 2 })) // checkpoint at step 4
      if (crash === 'staging-incomplete') {
        // Killed while writing the next checkpoint: DIR.next exists without its COMPLETE marker.
        cpSync(dir, `${dir}.next`, { recursive: true })
        rmSync(join(`${dir}.next`, 'COMPLETE'))
        writeFileSync(join(`${dir}.next`, 'model.safetensors'), 'torn')
        expect((await readRun(dir)).state.step).toBe(4) // the previous good one
      } else {
        // Killed between the renames: DIR moved to DIR.prev, the complete DIR.next not yet renamed.
        cpSync(dir, `${dir}.next`, { recursive: true })
        renameSync(dir, `${dir}.prev`)
        expect(existsSync(dir)).toBe(false)
        expect((await readRun(dir)).state.step).toBe(4)
      }
      const resumed = await train(options(dir, { steps: 6, checkpointInterval: 2, resume: true }))
      expect(
        resumed.records.map((r) => r.loss),
        crash,
      ).toEqual(full.records.map((r) => r.loss))
      expect(await paramsOf(dir)).toEqual(await paramsOf(a))
      expect(existsSync(`${dir}.next`) || existsSync(`${dir}.prev`)).toBe(false)
    }
  })

  it('a resume drops log records written after the last checkpoint', async () => {
    const dir = join(tempDir(), 'run')
    await train(options(dir, { steps: 2 }))
    const log = join(dir, 'log.jsonl')
    writeFileSync(log, `${readFileSync(log, 'utf8')}{"step":3,"loss":9}\n{"step":4,"lo`) // died mid-append
    const r = await train(options(dir, { steps: 3, resume: true }))
    expect(readLog(log).map((x) => x.step)).toEqual([1, 2, 3])
    expect(r.records[2].loss).not.toBe(9)
  })

  it('refuses a resume with a different config, naming every differing key', async () => {
    const dir = join(tempDir(), 'run')
    await train(options(dir, { steps: 1 }))
    const other = options(dir, { steps: 2, resume: true, lr: 1e-3 })
    other.run = { ...other.run, model: { ...other.run.model, dropout: 0.2 } }
    const err = await train(other).catch((e) => e)
    expect(err).toBeInstanceOf(TrainError)
    expect(err.message).toMatch(/lr: 0.003 in the checkpoint, 0.001 now/)
    expect(err.message).toMatch(/model.dropout: 0.1 in the checkpoint, 0.2 now/)
    expect(err.message).not.toMatch(/\n/)
  })

  it('refuses to start a fresh run in a folder that holds one', async () => {
    const dir = join(tempDir(), 'run')
    await train(options(dir, { steps: 1 }))
    await expect(train(options(dir, { steps: 1 }))).rejects.toThrow(/already holds a run.*--resume/)
    const other = join(tempDir(), 'x')
    mkdirSync(other)
    writeFileSync(join(other, 'notes.txt'), 'mine')
    await expect(train(options(other, { steps: 1 }))).rejects.toThrow(TrainError)
    expect(readFileSync(join(other, 'notes.txt'), 'utf8')).toBe('mine')
  })

  it('stops on a NaN/Inf loss naming the step, keeping the last good checkpoint', async () => {
    const dir = join(tempDir(), 'run')
    const err = await train(options(dir, { steps: 20, lr: 1e30, checkpointInterval: 1 })).catch((e) => e)
    expect(err, err.message).toBeInstanceOf(DivergenceError)
    expect(err.message).toMatch(new RegExp(`at step ${err.step}.*last good checkpoint \\(step ${err.step - 1}\\)`))
    const saved = await readRun(dir)
    expect(saved.state.step).toBe(err.step - 1)
    for (const v of saved.checkpoint.params.values()) expect(v.every(Number.isFinite)).toBe(true)
  })
})
