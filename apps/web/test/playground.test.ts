/**
 * The playground in a real browser: Debian's Chromium driven by playwright-core (never a downloaded
 * browser), headless, on the built page served with COOP/COEP. Each check compares the page with the same
 * @moas code run in Node: the greedy text of the demo model (wasm, and WebGPU through Chromium's software
 * adapter), the routing colours against the gates the model outputs, the train tab's first losses against
 * Node's TrainLoop, the JS heap over 100 generations, and a screenshot a developer can look at.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { buildLogitsGraph, CharTokenizer, resolveConfig, VARIANTS } from '@moas/gpt'
import { randomWeights } from '@moas/gpt/testing'
import {
  EXPORT_DTYPES,
  exportModelFiles,
  generate,
  type ModelFolder,
  memoryFolderReader,
  openModelFolder,
  readModelFolder,
  routeText,
  routingReport,
  routingStats,
} from '@moas/inference'
import { freshStart, makeRunConfig, modelConfig, syntheticDataset, TRAIN_PRESETS, TrainLoop } from '@moas/trainer'
import { type Browser, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { serve } from './server'

const appDir = fileURLToPath(new URL('..', import.meta.url))
const CHROMIUM = process.env.MOAS_CHROMIUM ?? '/usr/bin/chromium'
const PROMPT = 'the old king '
const TOKENS = 40

let browser: Browser
let server: Awaited<ReturnType<typeof serve>>
let demo: ModelFolder

// CI installs Chromium (.ci/run) and must run these tests; on a developer machine without it they are
// reported as skipped, with how to get them.
const hasChromium = existsSync(CHROMIUM)
if (!hasChromium && process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium package; the browser tests must run in CI`)
if (!hasChromium) console.warn(`browser tests skipped: ${CHROMIUM} is missing (apt-get install chromium, or set MOAS_CHROMIUM)`)

beforeAll(async () => {
  if (!hasChromium) return
  const { build } = await import('vite')
  await build({ root: appDir, logLevel: 'warn', configFile: join(appDir, 'vite.config.ts') })
  server = await serve(join(appDir, 'dist'))
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--enable-unsafe-webgpu',
    ],
  })
  const files = join(appDir, 'public', 'demo-model')
  demo = await readModelFolder(async (p) => (existsSync(join(files, p)) ? readFileSync(join(files, p)) : undefined), 'demo-model')
})

afterAll(async () => {
  await browser?.close()
  await server?.close()
})

async function open(): Promise<Page> {
  const page = await browser.newPage()
  page.on('pageerror', (e) => console.error('page error:', e.message))
  await page.goto(server.url)
  await page.waitForFunction(() => !(document.getElementById('generate') as HTMLButtonElement).disabled, null, { timeout: 120_000 })
  return page
}

/** The demo model's greedy continuation computed in Node (what `moas generate --model` prints). */
async function nodeGreedy(prompt: string, tokens: number) {
  const session = await openModelFolder(demo)
  const r = await generate(session, demo.tokenizer, [prompt], { maxNewTokens: tokens, temperature: 0 })
  // The routing of prompt + completion in one prefill (the gates at every position).
  const full = await session.prefill([[...demo.tokenizer.encode(prompt + r.completions[0])]])
  await session.release()
  return { completion: r.completions[0], gates: full.routing }
}

/** The losses of Node's TrainLoop (cpu) for the smoke moas model with seed 3: what the page must reproduce. */
async function nodeTrainLosses(steps: number, accum = 1): Promise<number[]> {
  return (await nodeTrainRecords(steps, accum)).map((r) => r.loss)
}

/** Node's TrainLoop records (cpu): losses, and val_loss at the eval updates. */
async function nodeTrainRecords(steps: number, accum = 1): Promise<{ loss: number; val_loss?: number }[]> {
  const data = syntheticDataset()
  const run = makeRunConfig({ ...TRAIN_PRESETS.smoke, steps, accum }, modelConfig('smoke', data.tokenizer.vocabSize, { attention: 'moas' }), data, 3)
  const loop = await TrainLoop.create(run, data, steps, freshStart(run, data))
  const records: { loss: number; val_loss?: number }[] = []
  while (!loop.done) records.push(await loop.next())
  await loop.release()
  return records
}

describe.skipIf(!hasChromium)('the playground in Chromium', () => {
  it('loads the demo model and generates the same greedy text as Node, on wasm', async () => {
    const page = await open()
    const info = await page.evaluate(() => document.getElementById('model-info')!.textContent)
    expect(info).toMatch(/^moas, 2 layers × 4 heads, n_embd 64/)
    const report = await page.evaluate(
      async ({ prompt, tokens }) => {
        const pg = (globalThis as any).moasPlayground
        await pg.playground.load(pg.urlReader('./demo-model/'), 'demo', 'wasm')
        return pg.playground.generate(prompt, { tokens, temperature: 0 })
      },
      { prompt: PROMPT, tokens: TOKENS },
    )
    expect(report.provider).toBe('wasm')
    expect(report.completion).toBe((await nodeGreedy(PROMPT, TOKENS)).completion)
    expect(report.kvBytes).toBeLessThan(report.mhaKvBytes * 2) // MoAS holds H+G+1 heads per layer, MHA H
    await page.close()
  })

  it("the same text on WebGPU (Chromium's software adapter with --enable-unsafe-webgpu)", async () => {
    const page = await open()
    const r = await page.evaluate(
      async ({ prompt, tokens }) => {
        const pg = (globalThis as any).moasPlayground
        const choice = await pg.chooseProvider('webgpu')
        if (choice.provider !== 'webgpu') return { skipped: choice.why }
        await pg.playground.load(pg.urlReader('./demo-model/'), 'demo', 'webgpu')
        return pg.playground.generate(prompt, { tokens, temperature: 0 })
      },
      { prompt: PROMPT, tokens: 12 },
    )
    expect(r.skipped, 'Chromium offered no WebGPU adapter').toBeUndefined()
    expect(r.provider).toBe('webgpu')
    expect(r.completion).toBe((await nodeGreedy(PROMPT, 12)).completion)
    await page.close()
  })

  // issue 9: which attention cores run in the browser. The page keeps the composed core; this records the
  // memory-efficient one (GroupQueryAttention) on both providers.
  it("the provider matrix: every variant × float32/float16 exported folder, loaded by the page on wasm and WebGPU, gives Node's greedy text or is refused with the reason", async () => {
    const matrix = join(appDir, 'dist', 'matrix')
    const tokenizer = CharTokenizer.fromText('the quick brown fox, jumps over a lazy dog! 0123')
    const prompt = 'the quick '
    const tokens = 12
    const cases: { name: string; node: string }[] = []
    for (const attention of VARIANTS)
      for (const dtype of EXPORT_DTYPES) {
        const config = resolveConfig({ vocab_size: tokenizer.vocabSize, block_size: 32, n_layer: 2, n_head: 4, n_kv_head: 2, n_embd: 16, attention })
        const params = randomWeights(buildLogitsGraph(config), 3) as Map<string, Float32Array>
        const files = exportModelFiles({ config, params, tokenizer, extra: {}, where: attention }, { dtype })
        const name = `${attention}-${dtype}`
        for (const [path, data] of Object.entries(files)) {
          mkdirSync(dirname(join(matrix, name, path)), { recursive: true })
          writeFileSync(join(matrix, name, path), data)
        }
        const folder = await readModelFolder(memoryFolderReader(files), name)
        const session = await openModelFolder(folder)
        cases.push({ name, node: (await generate(session, tokenizer, [prompt], { maxNewTokens: tokens, temperature: 0 })).completions[0] })
        await session.release()
      }
    const page = await open()
    const webgpu = (await page.evaluate(async () => (globalThis as any).moasPlayground.chooseProvider('webgpu'))).provider === 'webgpu'
    expect(webgpu, 'Chromium offered no WebGPU adapter').toBe(true)
    const rows: string[] = []
    for (const c of cases)
      for (const provider of ['wasm', 'webgpu'] as const) {
        const r = await page.evaluate(
          async ({ name, provider, prompt, tokens }) => {
            const pg = (globalThis as any).moasPlayground
            try {
              await pg.playground.load(pg.urlReader(`./matrix/${name}/`), name, provider)
              const g = await pg.playground.generate(prompt, { tokens, temperature: 0 })
              return { completion: g.completion, provider: g.provider, refused: pg.playground.refusal ?? null }
            } catch (e) {
              return { error: (e as Error).message }
            }
          },
          { name: c.name, provider, prompt, tokens },
        )
        expect(r.error, `${c.name} on ${provider}`).toBeUndefined()
        expect(r.completion, `${c.name} on ${provider} (${r.provider})`).toBe(c.node)
        if (provider === 'wasm' || !r.refused) expect(r.provider, c.name).toBe(provider)
        else expect(r.provider, `${c.name}: a refused WebGPU runs on wasm`).toBe('wasm')
        if (provider === 'webgpu') rows.push(`| ${c.name} | ${r.refused ? `refused: ${r.refused}` : 'same text as Node'} |`)
      }
    // the table docs/browser-matrix.md shows (one run's findings; the assertions above are what must hold)
    console.log(['| folder | WebGPU |', '| --- | --- |', ...rows].join('\n'))
    await page.close()
  })

  it('a user who chooses WebGPU, clicks Load twice and then Generate while the demo model still loads gets the text, on WebGPU, with no console error', async () => {
    const page = await browser.newPage()
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`))
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') errors.push(`${m.type()}: ${m.text()}`)
    })
    await page.goto(server.url)
    await page.selectOption('#provider', 'webgpu')
    await page.click('#load')
    await page.click('#load')
    await page.waitForFunction(() => !(document.getElementById('generate') as HTMLButtonElement).disabled, null, { timeout: 180_000 })
    await page.click('#generate')
    await page.waitForFunction(() => /decode/.test(document.getElementById('stats')!.textContent ?? ''), null, { timeout: 180_000 })
    const runtime = await page.evaluate(() => document.getElementById('runtime')!.textContent)
    expect(runtime).toMatch(/^Runs on webgpu/)
    expect(await page.evaluate(() => document.getElementById('model-info')!.textContent)).toMatch(/^moas, 2 layers/)
    expect(errors).toEqual([])
    await page.close()
  })

  it('the op finder (every intermediate output, WebGPU against wasm): nothing differs in the forward graphs of these variants', async () => {
    const page = await open()
    const find = (v: string) => page.evaluate(async (v) => (globalThis as any).moasPlayground.webgpuFirstDivergence(v), v)
    // gqe was found wrong in GatherElements (docs/browser-matrix.md) and now selects with a one-hot product.
    // moas-topk's forward graph over 8 tokens agrees too: its WebGPU refusal is the decoder's one-token probe,
    // where a branch routes no row and ScatterND meets an empty tensor (the provider matrix shows it).
    for (const v of ['mha', 'gqe', 'gqe-hard-only', 'moas-kv', 'moas-topk']) expect(await find(v), v).toEqual({ same: true })
    await page.close()
  })

  it('the memory-efficient attention core (GroupQueryAttention) in the page: equal to the composed core on wasm and WebGPU', async () => {
    const page = await open()
    const r = await page.evaluate(async () => {
      const pg = (globalThis as any).moasPlayground
      const webgpu = (await pg.chooseProvider('webgpu')).provider === 'webgpu'
      return { wasm: await pg.attentionKernelCheck('wasm'), webgpu: webgpu ? await pg.attentionKernelCheck('webgpu') : { error: 'no adapter' } }
    })
    expect(r.wasm.error, 'GroupQueryAttention on wasm').toBeUndefined()
    expect(r.wasm.maxDiff).toBeLessThan(1e-4)
    expect(r.webgpu.error, 'GroupQueryAttention on WebGPU').toBeUndefined()
    expect(r.webgpu.maxDiff).toBeLessThan(1e-3)
    await page.close()
  })

  it('colours every character by the scheme its router chose, as the gates the model outputs say', async () => {
    const page = await open()
    await page.fill('#prompt', PROMPT)
    await page.fill('#tokens', String(TOKENS))
    await page.click('#generate')
    await page.waitForFunction((n) => document.querySelectorAll('#output span').length >= n, PROMPT.length + TOKENS, { timeout: 120_000 })
    const node = await nodeGreedy(PROMPT, TOKENS)
    for (const layer of [0, 1]) {
      await page.selectOption('#layer', String(layer))
      const shown = await page.evaluate(() => [...document.querySelectorAll<HTMLElement>('#output span')].map((s) => s.dataset.choice ?? null))
      const gates = node.gates[`gates.${layer}`].data as Float32Array
      const want = Array.from({ length: PROMPT.length + TOKENS }, (_, t) => {
        const row = Array.from(gates.subarray(t * 3, t * 3 + 3))
        return String(row.indexOf(Math.max(...row)))
      })
      // the last character is never fed back, so it has no routing of its own
      expect(shown.slice(0, -1)).toEqual(want.slice(0, -1))
      expect(shown.at(-1)).toBeNull()
    }
    const title = await page.evaluate(() => document.querySelector<HTMLElement>('#output span')!.title)
    expect(title).toMatch(/^layer 1: gates MHA 0\.\d{3}, GQA 0\.\d{3}, MQA 0\.\d{3}$/)
    mkdirSync(join(appDir, 'test-results'), { recursive: true })
    await page.setViewportSize({ width: 1100, height: 760 })
    await page.screenshot({ path: join(appDir, 'test-results', 'playground.png'), fullPage: true })
    await page.close()
  })

  it("GQE is coloured by the group the Group selector names: each group's chosen expert, as the decoder returned it (the matrix's gqe folder)", async () => {
    const page = await open()
    await page.selectOption('#source', 'url')
    await page.fill('#url', './matrix/gqe-float32/')
    await page.selectOption('#provider', 'wasm')
    await page.click('#load')
    await page.waitForFunction(() => /^gqe,/.test(document.getElementById('model-info')!.textContent ?? ''), null, { timeout: 120_000 })
    expect(await page.isVisible('#group-label')).toBe(true)
    const groups = await page.$$eval('#group option', (os) => os.length)
    expect(groups).toBeGreaterThan(1)
    await page.fill('#tokens', '24')
    await page.click('#generate')
    await page.waitForFunction(() => /decode/.test(document.getElementById('stats')!.textContent ?? ''), null, { timeout: 120_000 })
    for (let g = 0; g < groups; g++) {
      await page.selectOption('#group', String(g))
      // null: a character without routing (the last one generated is never fed back)
      const shown = await page.$$eval('#output span', (ss) =>
        ss.map((x) => ((x as HTMLElement).dataset.choice === undefined ? null : Number((x as HTMLElement).dataset.choice))),
      )
      const want = await page.evaluate(
        (group) => (globalThis as any).moasPlayground.lastReport().chars.map((c: any) => (c.layers[0] ? c.layers[0].perGroup[group] : null)),
        g,
      )
      expect(want.filter((w: number | null) => w !== null).length).toBeGreaterThan(20)
      expect(shown, `group ${g}`).toEqual(want)
    }
    const perGroup = await page.evaluate(() =>
      (globalThis as any).moasPlayground
        .lastReport()
        .chars.filter((c: any) => c.layers[0])
        .map((c: any) => c.layers[0].perGroup.join(',')),
    )
    // the groups chose differently somewhere, so a view that ignored the selector would have failed above
    expect(perGroup.some((p: string) => new Set(p.split(',')).size > 1)).toBe(true)
    await page.close()
  })

  it("moas analyze's HTML report of the demo model opens in Chromium with its charts and coloured text, and no console error or warning", async () => {
    const session = await openModelFolder(demo)
    const text = 'the old king said to the young queen that the sea is wide and the ships are many.\n'.repeat(6)
    const choices = await routeText(session, demo.tokenizer, text)
    await session.release()
    const stats = routingStats(demo.config, text, choices)
    const html = routingReport({ config: demo.config, stats, text, choices, model: 'the demo model (moas, smoke size)', source: 'a test sentence' })
    mkdirSync(join(appDir, 'test-results'), { recursive: true })
    const file = join(appDir, 'test-results', 'analyze-report.html')
    writeFileSync(file, html)
    const page = await browser.newPage()
    const problems: string[] = []
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`)
    })
    await page.setViewportSize({ width: 1100, height: 900 })
    await page.goto(pathToFileURL(file).href)
    // three stacked-bar charts per layer (plus no training history here), and every character coloured
    expect(await page.locator('svg').count()).toBe(3 * demo.config.n_layer)
    expect(await page.locator('pre.text').first().locator('span').count()).toBe([...text].length)
    expect(problems).toEqual([])
    await page.screenshot({ path: join(appDir, 'test-results', 'analyze-report.png') })
    await page.close()
  })

  it('auto prefers wasm over a software WebGPU adapter and says why; WebGPU stays one choice away', async () => {
    const page = await open()
    const r = await page.evaluate(async () => {
      const pg = (globalThis as any).moasPlayground
      return { adapter: await pg.webgpuAdapter(), auto: await pg.chooseProvider('auto'), webgpu: await pg.chooseProvider('webgpu') }
    })
    // CI's Chromium has only SwiftShader, a software adapter
    expect(r.adapter, JSON.stringify(r)).toMatchObject({ software: true })
    expect(r.auto.provider).toBe('wasm')
    expect(r.auto.why).toMatch(/^the only WebGPU adapter is a software one.*slower than wasm; choose WebGPU to use it anyway$/)
    expect(r.webgpu).toMatchObject({ provider: 'webgpu' })
    expect(await page.textContent('#runtime')).toMatch(/^Runs on wasm — the only WebGPU adapter is a software one/)
    await page.close()
  })

  it('a model URL on another origin that cannot be read names CORS and the two ways out', async () => {
    const page = await open()
    await page.selectOption('#source', 'url')
    await page.fill('#url', 'http://127.0.0.1:9/model-folder/') // another origin; nothing listens there
    await page.click('#load')
    await page.waitForFunction(() => /could not load/.test(document.getElementById('model-info')!.textContent ?? ''), null, { timeout: 60_000 })
    const info = await page.textContent('#model-info')
    expect(info).toMatch(
      /^could not load: http:\/\/127\.0\.0\.1:9\/model-folder\/[\w.]+ could not be fetched: .*\(CORS\)\. Serve the folder with the header Access-Control-Allow-Origin/,
    )
    expect(info).toMatch(/choose "a folder on this computer"$/)
    await page.close()
  })

  it("the train tab, clicked as a user would: its losses follow Node's TrainLoop for the same seed (1e-4), then it generates and offers the folder", async () => {
    const page = await open()
    const steps = 8
    await page.click('nav button[data-tab=train]')
    expect(await page.isVisible('#tab-train')).toBe(true)
    await page.selectOption('#variant', 'moas')
    await page.fill('#steps', String(steps))
    await page.fill('#seed', '3')
    await page.selectOption('#train-provider', 'wasm')
    await page.click('#train')
    await page.waitForFunction(() => !(document.getElementById('download') as HTMLButtonElement).disabled, null, { timeout: 120_000 })
    const status = await page.textContent('#train-status')
    const nodeLosses = await nodeTrainLosses(steps)
    const last = status!.match(new RegExp(`update ${steps} of ${steps}: loss (\\d+\\.\\d{4})`))
    expect(last, status!).not.toBeNull()
    // the page prints four decimals: within 1e-4 of Node's last loss
    expect(Math.abs(Number(last![1]) - nodeLosses[steps - 1])).toBeLessThan(1e-4)
    expect(nodeLosses[steps - 1]).toBeLessThan(nodeLosses[0])
    expect((await page.textContent('#train-sample'))!.startsWith('the ')).toBe(true)
    // the chart drew one training point per update, the validation loss at each eval, and labelled axes
    const circles = await page.$$eval('#chart circle', (cs) => cs.map((c) => c.getAttribute('fill')))
    const [train, val] = [...new Set(circles)]
    const evals = (await nodeTrainRecords(steps)).filter((r) => r.val_loss !== undefined).length
    expect(evals).toBeGreaterThan(0)
    expect(circles.filter((c) => c === train)).toHaveLength(steps)
    expect(circles.filter((c) => c === val)).toHaveLength(evals)
    expect(await page.$$eval('#chart text', (ts) => ts.map((t) => t.textContent))).toEqual(
      expect.arrayContaining(['update', 'loss (nats)', 'training', 'validation', String(steps)]),
    )
    mkdirSync(join(appDir, 'test-results'), { recursive: true })
    await page.setViewportSize({ width: 1100, height: 760 })
    await page.screenshot({ path: join(appDir, 'test-results', 'train-tab.png'), fullPage: true })
    // the variant list is the registry's main variants
    const { MAIN_VARIANTS } = await import('@moas/gpt')
    expect(await page.$$eval('#variant option', (os) => os.map((o) => o.textContent))).toEqual([...MAIN_VARIANTS])
    await page.close()
  })

  it("tensor-core's device outputs on WebGPU: left in a GPU buffer, fed back without a copy, downloaded; a disposed one is refused", async () => {
    const page = await open()
    const r = await page.evaluate(() => (globalThis as any).moasPlayground.deviceOutputCheck())
    expect(r.location).toBe('gpu-buffer')
    expect(r.fedBack).toEqual([4, 8, 12, -16])
    expect(r.viaRun).toEqual([2, 4, 6, -8])
    expect(r.disposedFeed).toBe("feed 'x' is a DeviceTensor that was disposed; feed the tensor that replaced it")
    await page.close()
  })

  // Issue 8 §3: on WebGPU the parameters and Adam moments stay in GPU buffers between updates (fed back
  // as ONNX Runtime left them). Three updates, so updates 2 and 3 read state that never left the GPU; the
  // same run with the state copied to JS every update must give the same losses and parameters.
  it('the train tab trains on WebGPU with the state kept on the GPU: the same losses as Node (1e-4) and as a host round trip', async () => {
    const page = await open()
    const steps = 3
    const r = await page.evaluate(async (n) => {
      const pg = (globalThis as any).moasPlayground
      const run = async (stateOnDevice?: boolean) => {
        const t = await pg.trainInPage({ variant: 'moas', steps: n, seed: 3, provider: 'webgpu', stateOnDevice })
        return {
          onDevice: t.stateOnDevice,
          where: t.stateLocations,
          val: t.records.at(-1).val_loss,
          records: t.records.map((x: { loss: number; device: string }) => [x.loss, x.device]),
          params: t.model.params as Map<string, Float32Array>,
        }
      }
      const device = await run()
      const host = await run(false)
      let maxDiff = 0
      for (const [name, p] of device.params) {
        const q = host.params.get(name)!
        for (let i = 0; i < p.length; i++) maxDiff = Math.max(maxDiff, Math.abs(p[i] - q[i]))
      }
      return {
        device: { onDevice: device.onDevice, where: device.where, val: device.val, records: device.records },
        host: { onDevice: host.onDevice, where: host.where, records: host.records },
        maxDiff,
        count: device.params.size,
      }
    }, steps)
    expect(r.device.onDevice).toBe(true)
    expect(r.host.onDevice).toBe(false)
    // ONNX Runtime really left the state in GPU buffers after every update, the last one's eval included
    // (it reads the parameters from the GPU); the host run's state never left JS.
    expect(r.device.where).toEqual(['gpu-buffer', 'gpu-buffer', 'gpu-buffer'])
    expect(r.host.where).toEqual(['cpu', 'cpu', 'cpu'])
    const node = await nodeTrainRecords(steps)
    const nodeLosses = node.map((x) => x.loss)
    expect(r.device.val).toBeDefined()
    expect(Math.abs(r.device.val - node.at(-1)!.val_loss!), 'val_loss of the last update').toBeLessThan(1e-4)
    expect(r.device.records).toHaveLength(steps)
    r.device.records.forEach(([l, device]: [number, string], i: number) => {
      expect(device).toBe('webgpu')
      expect(Math.abs(l - nodeLosses[i]), `update ${i + 1}`).toBeLessThan(1e-4)
      expect(Math.abs(l - r.host.records[i][0]), `update ${i + 1}, device vs host state`).toBeLessThan(1e-6)
    })
    expect(r.count).toBeGreaterThan(10)
    expect(r.maxDiff).toBeLessThan(1e-6)
    await page.close()
  })

  // With accumulation the grads graph reads the parameters from the GPU and the apply graph keeps the new
  // state there: update 2 runs entirely on state that never left it.
  it('gradient accumulation (accum 2) on WebGPU with the state on the GPU: the same losses as Node (1e-4)', async () => {
    const page = await open()
    const steps = 2
    const r = await page.evaluate(async (n) => {
      const pg = (globalThis as any).moasPlayground
      const t = await pg.trainInPage({ variant: 'moas', steps: n, seed: 3, provider: 'webgpu', accum: 2 })
      return { onDevice: t.stateOnDevice, where: t.stateLocations, losses: t.records.map((x: { loss: number }) => x.loss) }
    }, steps)
    expect(r.onDevice).toBe(true)
    expect(r.where[0]).toBe('gpu-buffer')
    const nodeLosses = await nodeTrainLosses(steps, 2)
    expect(r.losses).toHaveLength(steps)
    r.losses.forEach((l: number, i: number) => expect(Math.abs(l - nodeLosses[i]), `update ${i + 1}`).toBeLessThan(1e-4))
    await page.close()
  })

  it('100 generations in one page grow the JS heap by less than 16 MiB', async () => {
    const page = await open()
    const cdp = await page.context().newCDPSession(page)
    const heap = async () => {
      await cdp.send('HeapProfiler.collectGarbage')
      return (await cdp.send('Runtime.getHeapUsage')).usedSize
    }
    await page.evaluate(async () => {
      const pg = (globalThis as any).moasPlayground
      await pg.playground.load(pg.urlReader('./demo-model/'), 'demo', 'wasm') // wasm: the software WebGPU adapter is slow
      await pg.playground.generate('ab ', { tokens: 10, temperature: 0 })
    })
    const before = await heap()
    await page.evaluate(async () => {
      const pg = (globalThis as any).moasPlayground.playground
      for (let i = 0; i < 100; i++) await pg.generate('ab ', { tokens: 10, temperature: 0.8, seed: i })
    })
    const growth = (await heap()) - before
    expect(growth).toBeLessThan(16 * 2 ** 20)
    await page.close()
  })
})
