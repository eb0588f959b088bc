/**
 * A reader racing a save: while loadCheckpoint reads, a save swaps the next checkpoint in. Made
 * deterministic by running the save inside the reader's read of model.safetensors (node:fs/promises'
 * readFile, wrapped); the reader must return one whole checkpoint, never the config of one save with the
 * weights of another, and never call the race corruption.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Graph } from '@moas/tensor-core'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { loadCheckpoint, saveCheckpoint } from './checkpoint-dir'
import { resolveConfig } from './config'
import { buildGpt } from './model'
import { randomWeights } from './testing/index'

const hook: { onRead: ((path: string) => Promise<void>) | null } = { onRead: null }
vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>()
  const readFile = (async (path: Parameters<typeof fs.readFile>[0], ...rest: unknown[]) => {
    const run = hook.onRead
    if (run) await run(String(path))
    return (fs.readFile as (...a: unknown[]) => Promise<unknown>)(path, ...rest)
  }) as typeof fs.readFile
  return { ...fs, readFile, default: { ...fs, readFile } }
})

const root = mkdtempSync(join(tmpdir(), 'moas-race-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))
const cfg = resolveConfig({ vocab_size: 4, block_size: 8, n_layer: 1, n_head: 2, n_embd: 8, attention: 'mha' })
const weights = (seed: number) => {
  const g = new Graph('w')
  buildGpt(g, cfg, { batch: 1, seq: 8, training: true, withTargets: false })
  return randomWeights(g, seed) as Map<string, Float32Array>
}
const save = (dir: string, step: number) =>
  saveCheckpoint(dir, { config: cfg, params: weights(step), tokenizer: { type: 'char', vocab: ['a', 'b', 'c', 'd'] }, extra: { training: { step } } })

describe('a reader racing a save', () => {
  it('a save swapped in while the weights are read: the reader returns one whole checkpoint (the newer), not a mix', async () => {
    const dir = join(root, 'run')
    await save(dir, 1)
    let reads = 0
    hook.onRead = async (path) => {
      // the second read of the weights is the decoding read, after the manifest was checked: swap then
      if (path.endsWith('model.safetensors') && ++reads === 2) {
        hook.onRead = null
        await save(dir, 2)
        hook.onRead = async () => {}
      }
    }
    const ck = await loadCheckpoint(dir)
    hook.onRead = null
    expect(reads).toBe(2)
    expect((ck.extra.training as { step: number }).step).toBe(2)
    const expected = weights(2)
    for (const [name, w] of ck.params) expect(Array.from(w), name).toEqual(Array.from(expected.get(name)!))
  })
})
