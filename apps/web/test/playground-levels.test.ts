/**
 * The playground's bytes line for moas-kv, in Node (no browser needed: the same Playground class on the
 * wasm provider): the bytes it reports for the levels the routers chose equal what a real level cache
 * holds after the same greedy generation (@moas/inference's LevelCacheStore, graph 'weights').
 */
import { buildLogitsGraph, CharTokenizer, type GptConfig, resolveConfig } from '@moas/gpt'
import { randomWeights } from '@moas/gpt/testing'
import { exportModelFiles, generate, memoryFolderReader, openModelFolder, readModelFolder } from '@moas/inference'
import { describe, expect, it } from 'vitest'
import { Playground } from '../src/playground'

describe('playground: moas-kv', () => {
  it('the bytes the chosen levels need equal what the level cache holds for the same text; the characters carry their levels to colour', async () => {
    const tokenizer = CharTokenizer.fromText('the quick brown fox, jumps! 0123')
    const config: GptConfig = resolveConfig({
      vocab_size: tokenizer.vocabSize,
      block_size: 48,
      n_layer: 2,
      n_head: 4,
      n_kv_head: 2,
      n_embd: 16,
      attention: 'moas-kv',
    })
    const params = randomWeights(buildLogitsGraph(config), 9) as Map<string, Float32Array>
    const files = exportModelFiles({ config, params, tokenizer, extra: {}, where: 'test' })
    const pg = new Playground()
    await pg.load(memoryFolderReader(files), 'moas-kv', 'wasm')
    const prompt = 'the quick brown fox '
    const page = await pg.generate(prompt, { tokens: 12, temperature: 0 })
    expect(page.levelKvBytes).toBeDefined()

    const folder = await readModelFolder(memoryFolderReader(files), 'moas-kv')
    const levels = await openModelFolder(folder, { graph: 'weights' })
    expect(levels.levels, 'graph weights keeps a level cache').toBeTruthy()
    const node = await generate(levels, folder.tokenizer, [prompt], { maxNewTokens: 12, temperature: 0 })
    await levels.release()
    expect(page.completion).toBe(node.completions[0])
    expect(page.levelKvBytes).toBe(node.cacheBytes)
    expect(page.levelKvBytes!).toBeLessThan(page.mhaKvBytes)
    const chosen = new Set(page.chars.flatMap((c) => c.layers.map((l) => l.choice)))
    expect(chosen.size, 'random routers pick more than one level').toBeGreaterThan(1)
    await pg.session?.release()
  })
})
