/** The page: wires the DOM to playground.ts. */
import { isRouted, MAIN_VARIANTS } from '@moas/gpt'
import { DecoderSession, generate } from '@moas/inference'
import {
  attentionKernelCheck,
  choiceLabels,
  chooseProvider,
  deviceOutputCheck,
  filesReader,
  type GenerationReport,
  modelFolderZip,
  type PageProvider,
  Playground,
  threads,
  trainInPage,
  urlReader,
  webgpuFirstDivergence,
} from './playground'

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const COLORS = ['#f4b9b2', '#b5d6f5', '#c6e8b4', '#f3e1a8', '#d9c5ef', '#b8ebe0', '#f5c9e4', '#d6d6d6']
const playground = new Playground()
let detected: Awaited<ReturnType<typeof chooseProvider>> | null = null

const fmt = (n: number | null, unit: string) => (n === null ? '–' : `${n.toFixed(0)} ${unit}`)
const bytes = (n: number) => (n >= 1024 * 1024 ? `${(n / 2 ** 20).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`)

function showRuntime(note = '') {
  const webgpu = document.querySelector<HTMLOptionElement>('#train-provider option[value=webgpu]')!
  webgpu.disabled = detected?.provider !== 'webgpu'
  const t = globalThis.crossOriginIsolated
    ? `${threads} wasm threads (the page is cross-origin isolated)`
    : '1 wasm thread (the page is not cross-origin isolated: no COOP/COEP headers)'
  $('runtime').textContent = `Runs on ${playground.provider}${detected ? ` — ${detected.why}` : ''}; ${t}.${note ? ` ${note}` : ''}`
}

/**
 * Load the model the source selector names, or `dropped` (files dropped on the page). Loads run one after
 * another: a click on Load while the page's own first load runs waits for it (two sessions created at once
 * break ONNX Runtime Web's WebGPU: "Session already started").
 */
let loading: Promise<void> = Promise.resolve()
function load(dropped?: File[]): Promise<void> {
  loading = loading
    .then(() => loadNow(dropped))
    .catch((e) => {
      $('model-info').textContent = `could not load: ${(e as Error).message}`
    })
  return loading
}

async function loadNow(dropped?: File[]) {
  detected ??= await chooseProvider()
  const source = dropped ? 'dropped folder' : ($('source') as HTMLSelectElement).value
  $('model-info').textContent = 'loading…'
  ;($('generate') as HTMLButtonElement).disabled = true
  try {
    const reader = dropped
      ? filesReader(dropped)
      : source === 'demo'
        ? urlReader('./demo-model/')
        : source === 'url'
          ? urlReader(($('url') as HTMLInputElement).value)
          : filesReader(($('folder') as HTMLInputElement).files ?? [])
    // WebGPU is refused, with the reason, for a model it does not compute as wasm does (Playground.load).
    const folder = await playground.load(reader, source === 'demo' ? 'demo model' : source, detected.provider)
    const note = playground.refusal ? `WebGPU refused for this model: ${playground.refusal}; it runs on wasm.` : ''
    const cfg = folder.config
    $('model-info').textContent =
      `${cfg.attention}, ${cfg.n_layer} layers × ${cfg.n_head} heads, n_embd ${cfg.n_embd}, context ${cfg.block_size}, ${folder.dtype}`
    const layer = $('layer') as HTMLSelectElement
    layer.innerHTML = Array.from({ length: cfg.n_layer }, (_, i) => `<option value="${i}">${i}</option>`).join('')
    $('legend').innerHTML =
      choiceLabels(cfg)
        .map((l, i) => `<span style="background:${COLORS[i % COLORS.length]}">${l}</span>`)
        .join('') || '<span class="muted">this variant has no router</span>'
    ;($('generate') as HTMLButtonElement).disabled = false
    showRuntime(note)
  } catch (e) {
    $('model-info').textContent = `could not load: ${(e as Error).message}`
  }
}

let last: GenerationReport | null = null
function render(report: GenerationReport) {
  const layer = Number(($('layer') as HTMLSelectElement).value || 0)
  const labels = playground.folder ? choiceLabels(playground.folder.config) : []
  const out = $('output')
  out.textContent = ''
  for (const c of report.chars) {
    const span = document.createElement('span')
    span.textContent = c.char
    if (c.prompt) span.className = 'prompt'
    const l = c.layers[layer]
    if (l) {
      span.style.background = COLORS[l.choice % COLORS.length]
      span.dataset.choice = String(l.choice)
      span.title = `layer ${layer}: ${l.perGroup ? `experts per group ${l.perGroup.join(', ')}; ` : ''}gates ${l.gates.map((g, i) => `${labels[i % labels.length] ?? i} ${g.toFixed(3)}`).join(', ')}`
    }
    out.append(span)
  }
  $('stats').textContent =
    `prefill ${fmt(report.prefillTokensPerS, 'tokens/s')}, decode ${fmt(report.decodeTokensPerS, 'tokens/s')}; KV cache ${bytes(report.kvBytes)} (an MHA model of this size would hold ${bytes(report.mhaKvBytes)})` +
    (report.levelKvBytes !== undefined
      ? `; the levels chosen need ${bytes(report.levelKvBytes)} (${((100 * report.levelKvBytes) / report.mhaKvBytes).toFixed(0)} % of MHA): a level cache holds that (moas generate --graph weights), this page's exported graph keeps every token at the finest level`
      : '')
}

async function run() {
  const out = $('output')
  out.textContent = ($('prompt') as HTMLTextAreaElement).value
  ;($('generate') as HTMLButtonElement).disabled = true
  try {
    last = await playground.generate(($('prompt') as HTMLTextAreaElement).value, {
      tokens: Number(($('tokens') as HTMLInputElement).value),
      temperature: Number(($('temperature') as HTMLInputElement).value),
      onText: (piece) => out.append(piece),
    })
    render(last)
  } catch (e) {
    out.textContent = `error: ${(e as Error).message}`
  } finally {
    ;($('generate') as HTMLButtonElement).disabled = false
  }
}

// ---------------------------------------------------------------- train tab

function chart(losses: number[]) {
  const svg = $('chart')
  if (!losses.length) return
  const max = Math.max(...losses)
  const min = Math.min(...losses)
  const x = (i: number) => 40 + (i / Math.max(1, losses.length - 1)) * 540
  const y = (v: number) => 20 + ((max - v) / Math.max(1e-9, max - min)) * 170
  svg.innerHTML =
    `<polyline fill="none" stroke="#3b6fd8" stroke-width="2" points="${losses.map((v, i) => `${x(i)},${y(v)}`).join(' ')}"/>` +
    `<text x="4" y="24" font-size="11">${max.toFixed(3)}</text><text x="4" y="194" font-size="11">${min.toFixed(3)}</text><text x="520" y="214" font-size="11">update ${losses.length}</text>`
}

// The registry's main variants; the first routed one (dynamic MoAS) is selected.
for (const v of MAIN_VARIANTS) $('variant').append(new Option(v, v, false, v === MAIN_VARIANTS.find(isRouted)))

let trained: Awaited<ReturnType<typeof trainInPage>> | null = null
async function train() {
  detected ??= await chooseProvider()
  const button = $('train') as HTMLButtonElement
  button.disabled = true
  const losses: number[] = []
  try {
    const steps = Number(($('steps') as HTMLInputElement).value)
    trained = await trainInPage({
      variant: ($('variant') as HTMLSelectElement).value,
      steps,
      seed: Number(($('seed') as HTMLInputElement).value),
      provider: ($('train-provider') as HTMLSelectElement).value as PageProvider,
      onRecord: (r) => {
        losses.push(r.loss)
        chart(losses)
        $('train-status').textContent =
          `update ${r.step} of ${steps}: loss ${r.loss.toFixed(4)}${r.val_loss !== undefined ? `, val ${r.val_loss.toFixed(4)}` : ''} (${r.ms} ms, ${r.device})`
      },
    })
    $('train-status').textContent += trained.stateOnDevice
      ? '; parameters and Adam moments stayed on the GPU between updates'
      : '; parameters and Adam moments went to JS and back every update'
    const session = await DecoderSession.create(trained.model, { provider: ($('train-provider') as HTMLSelectElement).value as PageProvider, threads })
    const g = await generate(session, trained.model.tokenizer, ['the '], { maxNewTokens: 80, temperature: 0 })
    await session.release()
    $('train-sample').textContent = `the ${g.completions[0]}`
    ;($('download') as HTMLButtonElement).disabled = false
  } catch (e) {
    $('train-status').textContent = `error: ${(e as Error).message}`
  } finally {
    button.disabled = false
  }
}

function download() {
  if (!trained) return
  const blob = new Blob([modelFolderZip(trained.model) as Uint8Array<ArrayBuffer>], { type: 'application/zip' })
  const a = document.createElement('a')
  a.href = URL.createObjectURL(blob)
  a.download = `moas-${trained.model.config.attention}.zip`
  a.click()
}

// ---------------------------------------------------------------- wiring

for (const b of document.querySelectorAll<HTMLButtonElement>('nav button')) {
  b.onclick = () => {
    for (const o of document.querySelectorAll<HTMLButtonElement>('nav button')) o.classList.toggle('active', o === b)
    $('tab-generate').hidden = b.dataset.tab !== 'generate'
    $('tab-train').hidden = b.dataset.tab !== 'train'
  }
}
$('source').onchange = () => {
  const v = ($('source') as HTMLSelectElement).value
  $('url').hidden = v !== 'url'
  $('folder').hidden = v !== 'folder'
}
$('load').onclick = () => void load()
$('generate').onclick = () => void run()
$('layer').onchange = () => last && render(last)
$('train').onclick = () => void train()
$('download').onclick = download
document.body.ondragover = (e) => e.preventDefault()
document.body.ondrop = (e) => {
  e.preventDefault()
  const files = [...(e.dataTransfer?.files ?? [])]
  if (files.length) void load(files)
}

// For the browser tests (and the curious): the same functions the buttons use.
;(globalThis as unknown as { moasPlayground: unknown }).moasPlayground = {
  playground,
  load,
  run,
  train,
  trainInPage,
  chooseProvider,
  urlReader,
  threads,
  attentionKernelCheck,
  webgpuFirstDivergence,
  deviceOutputCheck,
}
void load()
