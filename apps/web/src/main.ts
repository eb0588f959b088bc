/** The page: wires the DOM to playground.ts. */
import { isRouted, MAIN_VARIANTS, routingGroups } from '@moas/gpt'
import { DecoderSession, generate } from '@moas/inference'
import { valLossChart } from '@moas/trainer'
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
  type ProviderChoice,
  threads,
  trainInPage,
  urlReader,
  webgpuAdapter,
  webgpuFirstDivergence,
} from './playground'

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const COLORS = ['#f4b9b2', '#b5d6f5', '#c6e8b4', '#f3e1a8', '#d9c5ef', '#b8ebe0', '#f5c9e4', '#d6d6d6']
const playground = new Playground()
let detected: Awaited<ReturnType<typeof chooseProvider>> | null = null

const fmt = (n: number | null, unit: string) => (n === null ? '–' : `${n.toFixed(0)} ${unit}`)
const bytes = (n: number) => (n >= 1024 * 1024 ? `${(n / 2 ** 20).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`)

async function showRuntime(note = '') {
  const webgpu = document.querySelector<HTMLOptionElement>('#train-provider option[value=webgpu]')!
  webgpu.disabled = !(await webgpuAdapter())
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
  detected = await chooseProvider(($('provider') as HTMLSelectElement).value as ProviderChoice)
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
    // GQE routes each group of query heads on its own: the view colours the group chosen here
    const groups = routingGroups(cfg)
    ;($('group') as HTMLSelectElement).innerHTML = Array.from({ length: groups }, (_, g) => `<option value="${g}">${g}</option>`).join('')
    $('group-label').hidden = groups < 2
    $('legend').innerHTML =
      choiceLabels(cfg)
        .map((l, i) => `<span style="background:${COLORS[i % COLORS.length]}">${l}</span>`)
        .join('') || '<span class="muted">this variant has no router</span>'
    ;($('generate') as HTMLButtonElement).disabled = false
    await showRuntime(note)
  } catch (e) {
    $('model-info').textContent = `could not load: ${(e as Error).message}`
  }
}

let last: GenerationReport | null = null
function render(report: GenerationReport) {
  const layer = Number(($('layer') as HTMLSelectElement).value || 0)
  const group = Number(($('group') as HTMLSelectElement).value || 0)
  const labels = playground.folder ? choiceLabels(playground.folder.config) : []
  const out = $('output')
  out.textContent = ''
  for (const c of report.chars) {
    const span = document.createElement('span')
    span.textContent = c.char
    if (c.prompt) span.className = 'prompt'
    const l = c.layers[layer]
    if (l) {
      const choice = l.perGroup?.[group] ?? l.choice
      span.style.background = COLORS[choice % COLORS.length]
      span.dataset.choice = String(choice)
      span.title = `layer ${layer}${l.perGroup ? `, group ${group}` : ''}: ${l.perGroup ? `experts per group ${l.perGroup.join(', ')}; ` : ''}gates ${l.gates.map((g, i) => `${labels[i % labels.length] ?? i} ${g.toFixed(3)}`).join(', ')}`
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

/** The train tab's chart (the trainer's chart module): training loss per update, validation loss at each eval. */
function chart(losses: number[], vals: { step: number; loss: number }[]) {
  if (!losses.length) return
  const point = (step: number, v: number) => ({ step, mean: v, min: v, max: v })
  $('chart').innerHTML = valLossChart(
    [
      { name: 'training', points: losses.map((v, i) => point(i + 1, v)) },
      { name: 'validation', points: vals.map((v) => point(v.step, v.loss)) },
    ],
    { xLabel: 'update', yLabel: 'loss (nats)', width: 600, height: 260, seedNotes: false },
  )
}

// The registry's main variants; the first routed one (dynamic MoAS) is selected.
for (const v of MAIN_VARIANTS) $('variant').append(new Option(v, v, false, v === MAIN_VARIANTS.find(isRouted)))

let trained: Awaited<ReturnType<typeof trainInPage>> | null = null
async function train() {
  const button = $('train') as HTMLButtonElement
  button.disabled = true
  const losses: number[] = []
  const vals: { step: number; loss: number }[] = []
  try {
    const steps = Number(($('steps') as HTMLInputElement).value)
    trained = await trainInPage({
      variant: ($('variant') as HTMLSelectElement).value,
      steps,
      seed: Number(($('seed') as HTMLInputElement).value),
      provider: ($('train-provider') as HTMLSelectElement).value as PageProvider,
      onRecord: (r) => {
        losses.push(r.loss)
        if (r.val_loss !== undefined) vals.push({ step: r.step, loss: r.val_loss })
        chart(losses, vals)
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
$('group').onchange = () => last && render(last)
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
  lastReport: () => last,
  train,
  trainInPage,
  chooseProvider,
  webgpuAdapter,
  urlReader,
  threads,
  attentionKernelCheck,
  webgpuFirstDivergence,
  deviceOutputCheck,
}
void load()
