/**
 * Interop, with the real clients: a model trained and exported by the moas CLI is loaded by
 * (a) examples/ort-decode.mjs, plain onnxruntime-node with no @moas import, and (b) transformers.js
 * (@huggingface/transformers) as a text-generation model; both must produce `moas generate`'s greedy text.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../..', import.meta.url))
const moas = join(root, 'apps/cli/dist/index.js')
const example = join(root, 'examples/ort-decode.mjs')
const PROMPT = 'the old king '
const TOKENS = 40

let work: string
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'moas-interop-'))
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

async function cli(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [moas, ...args], { cwd: work, maxBuffer: 1 << 24 })
  return stdout
}

/** Train a smoke model briefly, export it; returns [checkpoint, model folder]. */
async function trainAndExport(variant: string, dtype = 'float32', extra: string[] = []): Promise<[string, string]> {
  const ck = join(work, `run-${variant}`)
  await cli(['train', '--attention', variant, '--preset', 'smoke', '--steps', '40', '--out', ck]).catch(async (e) => {
    if (!String(e.stderr).includes('already holds')) throw e
  })
  const out = join(work, `model-${variant}-${dtype}${extra.length ? '-external' : ''}`)
  await cli(['export', '--checkpoint', ck, '--out', out, '--dtype', dtype, ...extra])
  return [ck, out]
}

/** transformers.js's greedy text-generation of the folder (dtype 'fp32' names onnx/model.onnx). */
async function transformersGreedy(folder: string): Promise<string> {
  const { env, pipeline } = await import('@huggingface/transformers')
  env.allowRemoteModels = false
  env.localModelPath = work
  const generator = await pipeline('text-generation', folder.slice(work.length + 1), { dtype: 'fp32', device: 'cpu' })
  const [out] = (await generator(PROMPT, { max_new_tokens: TOKENS, do_sample: false })) as { generated_text: string }[]
  await generator.dispose()
  return out.generated_text
}

const greedy = async (source: string[]) =>
  JSON.parse((await cli(['generate', ...source, '--prompt', PROMPT, '--tokens', String(TOKENS), '--temperature', '0', '--json'])).split('\n')[0])
    .completion as string

describe.each(['mha', 'moas', 'moas-topk', 'gqe', 'moas-kv'])('%s model folder', (variant) => {
  let checkpoint: string
  let folder: string
  let expected: string
  beforeAll(async () => {
    ;[checkpoint, folder] = await trainAndExport(variant)
    expected = await greedy(['--checkpoint', checkpoint])
  }, 120_000)

  it('moas generate gives the same greedy text from the checkpoint and from the exported folder', async () => {
    expect(expected).toHaveLength(TOKENS)
    expect(await greedy(['--model', folder])).toBe(expected)
  })

  it('plain onnxruntime-node (examples/ort-decode.mjs, no @moas import) decodes the same text with the cache', async () => {
    const { stdout } = await run(process.execPath, [example, folder, PROMPT, String(TOKENS)], { cwd: root })
    expect(JSON.parse(stdout)).toEqual({ prompt: PROMPT, completion: expected })
  })

  it('transformers.js loads it as a text-generation model and produces the same greedy text', async () => {
    expect(await transformersGreedy(folder)).toBe(PROMPT + expected)
  })
})

describe("positions past the model's context", () => {
  it('the example stops at max_position_embeddings with a message, not an ONNX Runtime error', async () => {
    const folder = join(work, 'model-mha-float32') // exported above
    const context = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')).max_position_embeddings
    const { stdout, stderr } = await run(process.execPath, [example, folder, PROMPT, String(context + 10)], { cwd: root })
    const fits = context - [...PROMPT].length + 1
    expect(JSON.parse(stdout).completion).toHaveLength(fits)
    expect(stderr.trim()).toBe(
      `stopped after ${fits} new tokens: the model's context is ${context} positions (max_position_embeddings in config.json); at most ${fits} new tokens fit after this prompt`,
    )
  })
})

describe('a float16 export (weights, activations and cache in float16)', () => {
  let folder: string
  let expected: string
  beforeAll(async () => {
    ;[, folder] = await trainAndExport('gqe', 'float16')
    expected = await greedy(['--model', folder])
  }, 120_000)

  it("plain onnxruntime-node decodes it with a float16 cache, giving moas generate's text", async () => {
    expect(JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')).torch_dtype).toBe('float16')
    const { stdout } = await run(process.execPath, [example, folder, PROMPT, String(TOKENS)], { cwd: root })
    expect(JSON.parse(stdout)).toEqual({ prompt: PROMPT, completion: expected })
  })

  it('transformers.js loads it (onnx/model.onnx, dtype "fp32" names the file) and gives the same text', async () => {
    expect(await transformersGreedy(folder)).toBe(PROMPT + expected)
  })
})

describe('an export with external data (weights in onnx/model.onnx_data, as models beyond 2 GiB need)', () => {
  let folder: string
  let expected: string
  beforeAll(async () => {
    ;[, folder] = await trainAndExport('moas', 'float32', ['--external-data'])
    expected = await greedy(['--model', folder])
  }, 120_000)

  it('moas, plain onnxruntime-node and transformers.js all load it and give the same greedy text', async () => {
    expect(readFileSync(join(folder, 'onnx', 'model.onnx_data')).byteLength).toBeGreaterThan(500_000)
    expect(expected).toBe(await greedy(['--model', join(work, 'model-moas-float32')]))
    const { stdout } = await run(process.execPath, [example, folder, PROMPT, String(TOKENS)], { cwd: root })
    expect(JSON.parse(stdout)).toEqual({ prompt: PROMPT, completion: expected })
    expect(await transformersGreedy(folder)).toBe(PROMPT + expected)
  })
})
