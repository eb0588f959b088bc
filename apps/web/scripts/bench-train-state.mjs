// Issue 8 §3: what keeping the training state on the GPU saves in the browser. Trains the page's smoke
// model (the train tab's code: @moas/trainer's TrainLoop on onnxruntime-web) in Debian's Chromium, on
// WebGPU with the parameters and Adam moments kept in GPU buffers between updates, and with them copied to
// JS and back every update, alternating the two; wasm in the same run as a baseline. Prints the machine,
// the adapter and per-update medians; writes results/latest/train-state.{json,md} (results/ with
// --update-results). Usage: pnpm --filter @moas/web bench:train-state [--steps N] [--rounds N] [--update-results]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { describeMachine, machineInfo, summarize } from '@moas/bench'
import { modelConfig, paramInfos, syntheticDataset, TRAIN_PRESETS } from '@moas/trainer'
import { chromium } from 'playwright-core'
import { build, preview } from 'vite'

const { values } = parseArgs({
  options: { steps: { type: 'string', default: '5' }, rounds: { type: 'string', default: '2' }, 'update-results': { type: 'boolean', default: false } },
})
const positive = (name) => {
  const n = Number(values[name])
  if (!(Number.isInteger(n) && n >= 2)) {
    console.error(`--${name} must be a whole number of at least 2 (got '${values[name]}'): the first update of each run is a warm-up and is not counted`)
    process.exit(2)
  }
  return n
}
const steps = positive('steps')
const rounds = positive('rounds')
const CHROMIUM = process.env.MOAS_CHROMIUM ?? '/usr/bin/chromium'
const appDir = fileURLToPath(new URL('..', import.meta.url))

/** onnxruntime-web's version (its package.json is not exported, so it is read beside the resolved entry). */
function ortWebVersion() {
  const entry = createRequire(import.meta.url).resolve('onnxruntime-web')
  const root = entry.slice(0, entry.lastIndexOf('onnxruntime-web') + 'onnxruntime-web'.length)
  return JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version
}

const data = syntheticDataset()
const model = modelConfig('smoke', data.tokenizer.vocabSize, { attention: 'moas' })
const stateFloats = paramInfos(model).reduce((n, p) => n + p.tensor.shape.reduce((a, b) => a * b, 1), 0) * 3
const machine = machineInfo(1)

await build({ root: appDir, logLevel: 'warn', configFile: join(appDir, 'vite.config.ts') })
const server = await preview({ root: appDir, configFile: join(appDir, 'vite.config.ts'), preview: { port: 0, host: '127.0.0.1' }, logLevel: 'warn' })
const browser = await chromium.launch({
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
try {
  const page = await browser.newPage()
  await page.goto(server.resolvedUrls.local[0])
  await page.waitForFunction(() => !document.getElementById('generate').disabled, null, { timeout: 120_000 })
  const adapter = await page.evaluate(() => globalThis.moasPlayground.chooseProvider())
  if (adapter.provider !== 'webgpu') throw new Error(`Chromium offered no WebGPU adapter (${adapter.why}); nothing to measure`)
  const threads = await page.evaluate(() => globalThis.moasPlayground.threads)
  const chromiumVersion = browser.version()
  const ortWeb = ortWebVersion()
  const modes = [
    { name: 'webgpu, state on the GPU', provider: 'webgpu', stateOnDevice: true },
    { name: 'webgpu, state to JS and back', provider: 'webgpu', stateOnDevice: false },
  ]
  const samples = new Map([...modes, { name: 'wasm (state in JS)' }].map((m) => [m.name, []]))
  const order = []
  for (let r = 0; r < rounds; r++) order.push(...(r % 2 ? [...modes].reverse() : modes))
  order.push({ name: 'wasm (state in JS)', provider: 'wasm' })
  for (const [i, m] of order.entries()) {
    const ms = await page.evaluate(
      async ({ provider, stateOnDevice, steps }) => {
        const t = await globalThis.moasPlayground.trainInPage({ variant: 'moas', steps, seed: 3, provider, stateOnDevice })
        if (provider === 'webgpu' && t.stateOnDevice !== stateOnDevice) throw new Error(`asked stateOnDevice ${stateOnDevice}, ran ${t.stateOnDevice}`)
        return t.records.map((x) => x.ms)
      },
      { provider: m.provider, stateOnDevice: m.stateOnDevice, steps },
    )
    samples.get(m.name).push(...ms.slice(1)) // the first update compiles shaders and uploads the initial state
    console.log(
      `  [train-state] ${i + 1}/${order.length} ${m.name}: ${ms
        .slice(1)
        .map((x) => x.toFixed(0))
        .join(', ')} ms per update`,
    )
  }
  machine.loadAvgAfter = machineInfo(1).loadAvg
  const rows = [...samples].map(([name, s]) => ({ name, ...summarize(s) }))
  const base = rows[1].median
  const header = [
    `# Training state on the GPU in the browser (issue 8 §3)`,
    '',
    `${machine.date}, ${describeMachine(machine)} (the Node process only drives the page); in the page: onnxruntime-web ${ortWeb} in Chromium ${chromiumVersion} (${CHROMIUM}), ${adapter.why}, wasm threads ${threads}.`,
    `Model: the page's smoke moas (${model.n_layer} layers, ${model.n_head} heads, ${model.n_embd} wide, batch ${TRAIN_PRESETS.smoke.batch_size} × ${model.block_size}); state: parameters + Adam m + v = ${stateFloats} floats (${((stateFloats * 4) / 2 ** 20).toFixed(2)} MiB) per update each way when it goes to JS.`,
    `${steps} updates per run (the first not counted), ${rounds} runs per WebGPU mode alternating, one wasm run; ms per update as the trainer logs it (batch, noise, forward + backward + AdamW).`,
    '',
    '| mode | median ms/update | min | max | n | vs state to JS |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) => `| ${r.name} | ${r.median.toFixed(1)} | ${r.min.toFixed(1)} | ${r.max.toFixed(1)} | ${r.samples.length} | ${(r.median / base).toFixed(3)} |`,
    ),
  ]
  const md = `${header.join('\n')}\n`
  console.log(`\n${md}`)
  const dir = join(appDir, 'results', values['update-results'] ? '' : 'latest')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'train-state.md'), md)
  writeFileSync(
    join(dir, 'train-state.json'),
    `${JSON.stringify({ machine, chromium: { path: CHROMIUM, version: chromiumVersion }, ortWeb, adapter: adapter.why, wasmThreads: threads, model, stateFloats, steps, rounds, rows }, null, 2)}\n`,
  )
  console.log(`wrote ${join(dir, 'train-state.{md,json}')}`)
} finally {
  await browser.close()
  await new Promise((r) => server.httpServer.close(r))
}
