/**
 * What the page does, apart from the DOM: load a model folder, generate with the KV cache while collecting
 * the router's choices for every character, and train a model in the page. All of it is @moas code that
 * runs in Node too (inference's DecoderSession and generate, trainer's TrainLoop); nothing is re-implemented
 * here. `window.moasPlayground` exposes these functions to the browser tests.
 */
import { kvCacheBytesPerToken, levelCosts, paramFeeds, resolveConfig, variantSpec } from '@moas/gpt'

export { choiceLabels } from '@moas/inference'

import {
  argmax,
  buildLogitsGraph,
  type CharTokenizer,
  DecoderSession,
  exportModelFiles,
  type FolderReader,
  generate,
  type LoadedModel,
  type ModelFolder,
  openModelFolder,
  type RoutingChoice,
  readModelFolder,
  routingChoices,
} from '@moas/inference'
import { Graph, hostTensor, initParams, ops, Session, type Tensor } from '@moas/tensor-core'
import { freshStart, type LogRecord, makeRunConfig, modelConfig, syntheticDataset, TRAIN_PRESETS, TrainLoop } from '@moas/trainer'
import { zipSync } from 'fflate'

export type PageProvider = 'webgpu' | 'wasm'

/** Multi-threaded wasm needs a cross-origin-isolated page (COOP/COEP headers); one thread otherwise. */
export const threads = globalThis.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1

/** What the page's provider selector offers: auto, or one provider by name. */
export type ProviderChoice = 'auto' | PageProvider

/** The browser's WebGPU adapter, if any: its name and whether it is a software (fallback) one. */
export async function webgpuAdapter(): Promise<{ name: string; software: boolean } | null> {
  type Info = { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean }
  const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<{ info?: Info; isFallbackAdapter?: boolean } | null> } }).gpu
  const adapter = await gpu?.requestAdapter().catch(() => null)
  if (!adapter) return null
  const info = adapter.info ?? {}
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ')
  // Chromium reports SwiftShader without the fallback flag on some versions: its name says it
  const software = info.isFallbackAdapter === true || adapter.isFallbackAdapter === true || /swiftshader|llvmpipe|software/i.test(name)
  return { name, software }
}

/**
 * The provider for the selector's choice, and why. auto: WebGPU on a hardware adapter; wasm where there is
 * none or only a software one (which runs these models many times slower than wasm). A named provider is
 * taken when the browser has it.
 */
export async function chooseProvider(choice: ProviderChoice = 'auto'): Promise<{ provider: PageProvider; why: string }> {
  if (choice === 'wasm') return { provider: 'wasm', why: 'wasm chosen' }
  if (!(navigator as unknown as { gpu?: unknown }).gpu) return { provider: 'wasm', why: 'this browser has no WebGPU (navigator.gpu is missing)' }
  const adapter = await webgpuAdapter()
  if (!adapter) return { provider: 'wasm', why: 'WebGPU is present but offers no adapter here' }
  const named = adapter.name ? `: ${adapter.name}` : ''
  if (choice === 'auto' && adapter.software)
    return { provider: 'wasm', why: `the only WebGPU adapter is a software one${named}, slower than wasm; choose WebGPU to use it anyway` }
  return { provider: 'webgpu', why: `${choice === 'webgpu' ? 'WebGPU chosen, ' : ''}${adapter.software ? 'software ' : ''}WebGPU adapter${named}` }
}

/** A model folder served over HTTP (the demo model, or any URL that serves an exported folder). */
export function urlReader(base: string): FolderReader {
  const root = base.endsWith('/') ? base : `${base}/`
  return async (path) => {
    const url = new URL(path, new URL(root, location.href))
    let res: Response
    try {
      res = await fetch(url)
    } catch {
      // fetch gives a bare "Failed to fetch" for both; the page's own origin cannot be the CORS case
      throw new Error(
        url.origin === location.origin
          ? `${url.href} could not be fetched (the server did not answer)`
          : `${url.href} could not be fetched: the server did not answer, or it does not allow pages of other origins to read it (CORS). Serve the folder with the header Access-Control-Allow-Origin: * (or from this page's origin), or download it and choose "a folder on this computer"`,
      )
    }
    return res.ok ? new Uint8Array(await res.arrayBuffer()) : undefined
  }
}

/** A model folder the user picked (<input webkitdirectory>) or dropped: paths relative to its top folder. */
export function filesReader(files: Iterable<File>): FolderReader {
  const byPath = new Map<string, File>()
  for (const f of files) byPath.set((f.webkitRelativePath || f.name).split('/').slice(1).join('/') || f.name, f)
  return async (path) => {
    const f = byPath.get(path)
    return f ? new Uint8Array(await f.arrayBuffer()) : undefined
  }
}

export type LayerChoice = RoutingChoice

export interface GeneratedChar {
  char: string
  prompt: boolean
  /** Per layer; empty for unrouted variants and for the last character (never fed back). */
  layers: LayerChoice[]
}

export interface GenerationReport {
  text: string
  completion: string
  chars: GeneratedChar[]
  provider: PageProvider
  prefillTokensPerS: number | null
  decodeTokensPerS: number | null
  kvBytes: number
  /** What an MHA model of the same size would hold for the same positions. */
  mhaKvBytes: number
  /**
   * moas-kv: the bytes a level cache holds for the levels the routers chose (each fed token's level in each
   * layer). The exported graph the page runs keeps every token at the finest level, as ONNX decoder
   * clients expect; `moas generate --graph weights` in Node holds exactly this.
   */
  levelKvBytes?: number
}

export class Playground {
  folder: ModelFolder | null = null
  session: DecoderSession | null = null
  provider: PageProvider = 'wasm'

  /** Why WebGPU was refused for the loaded model (the page then runs it on wasm); null when it was not. */
  refusal: string | null = null

  /**
   * Load a model folder and open a routing session on `provider`. WebGPU must first agree with wasm on
   * the folder (probeWebgpu); where it does not, the model runs on wasm and `refusal` says why:
   * the page never shows text that ONNX Runtime's WebGPU kernels got wrong.
   */
  async load(reader: FolderReader, where: string, provider: PageProvider): Promise<ModelFolder> {
    const folder = await readModelFolder(reader, where)
    await this.session?.release()
    this.session = null
    const probe = provider === 'webgpu' ? await probeWebgpu(folder) : { refusal: null, session: null }
    this.refusal = probe.refusal
    const runs = this.refusal ? 'wasm' : provider
    this.session = probe.session ?? (await openModelFolder(folder, { provider: runs, threads }))
    this.folder = folder
    this.provider = runs
    return folder
  }

  /** Generate a continuation, streaming each new piece to `onText`, with the routing of every character. */
  async generate(prompt: string, opts: { tokens: number; temperature: number; seed?: number; onText?: (piece: string) => void }): Promise<GenerationReport> {
    if (!this.session || !this.folder) throw new Error('load a model first')
    const cfg = this.folder.config
    const prompted = [...prompt].map((char) => ({ char, prompt: true, layers: [] as LayerChoice[] }))
    const generated: GeneratedChar[] = []
    let fed = 0 // routing rows seen so far (prompt first, then each fed token)
    const r = await generate(this.session, this.folder.tokenizer, [prompt], {
      maxNewTokens: opts.tokens,
      temperature: opts.temperature,
      seed: opts.seed ?? 0,
      onToken: (t) => {
        generated.push({ char: t.text, prompt: false, layers: [] })
        opts.onText?.(t.text)
      },
      onRun: (run, info) => {
        if (info.slid) return // a rebuilt window repeats positions already coloured
        for (const layers of routingChoices(run, cfg)) {
          const target = fed < prompted.length ? prompted[fed] : generated[fed - prompted.length]
          if (target) target.layers = layers
          fed++
        }
      },
    })
    const positions = this.session.pastLength
    const perS = (n: number, ms: number) => (ms > 0 ? (n / ms) * 1000 : null)
    const mha = resolveConfig({ ...cfg, attention: 'mha' })
    const bytesPerElement = this.folder.dtype === 'float16' ? 2 : 4
    const mhaPerLayer = kvCacheBytesPerToken(mha, bytesPerElement) / cfg.n_layer
    const costs = variantSpec(cfg.attention).levelCache ? levelCosts(cfg) : null
    const chars = [...prompted, ...generated]
    const levelKvBytes = costs ? chars.reduce((sum, c) => sum + c.layers.reduce((s, l) => s + costs[l.choice] * mhaPerLayer, 0), 0) : undefined
    return {
      text: prompt + r.completions[0],
      completion: r.completions[0],
      chars,
      provider: this.provider,
      prefillTokensPerS: perS(r.prefill.tokens, r.prefill.ms),
      decodeTokensPerS: perS(r.decode.tokens, r.decode.ms),
      kvBytes: r.cacheBytes,
      mhaKvBytes: kvCacheBytesPerToken(mha, bytesPerElement) * positions,
      ...(levelKvBytes !== undefined ? { levelKvBytes } : {}),
    }
  }
}

/**
 * Does WebGPU compute this folder's model as wasm does? Both providers run the same probe — a prefill of a
 * fixed sequence, then decode steps fed the same next tokens — and every logit must be finite, within
 * the dtype's tolerance of wasm's, with the same most likely character at every position (what greedy
 * text depends on). ONNX Runtime Web's WebGPU kernels are wrong for some graphs (docs/browser-matrix.md);
 * this check refuses any such model, known or not. Returns the reason WebGPU is refused (or null) and the
 * session the page goes on with (its next prefill starts afresh): the WebGPU one when WebGPU agrees, the
 * wasm one the comparison opened when it does not, or null when WebGPU was refused before that.
 */
export async function probeWebgpu(folder: ModelFolder): Promise<{ refusal: string | null; session: DecoderSession | null }> {
  if (folder.dtype === 'float16') {
    const gpu = (navigator as unknown as { gpu?: { requestAdapter(): Promise<{ features: { has(f: string): boolean } } | null> } }).gpu
    const adapter = await gpu?.requestAdapter().catch(() => null)
    // Without it ONNX Runtime Web runs float16 graphs anyway and returns zeros (measured on SwiftShader).
    if (adapter && !adapter.features.has('shader-f16'))
      return { refusal: "this WebGPU adapter lacks the 'shader-f16' feature that float16 models need", session: null }
  }
  const V = folder.config.vocab_size
  const length = Math.min(12, folder.config.block_size)
  const ids = Array.from({ length }, (_, i) => (i * 7 + 1) % V)
  const prefix = Math.max(1, length - 4)
  const runProbe = async (session: DecoderSession) => {
    const rows = [(await session.prefill([ids.slice(0, prefix)])).logits]
    for (let i = prefix; i < length; i++) rows.push((await session.step([ids[i]])).logits.slice(-V))
    return rows
  }
  let gpu: DecoderSession
  try {
    gpu = await openModelFolder(folder, { provider: 'webgpu', threads })
  } catch (e) {
    return { refusal: `ONNX Runtime's WebGPU provider cannot run it (${(e as Error).message.split('\n')[0].slice(0, 200)})`, session: null }
  }
  let onGpu: Float32Array[]
  try {
    onGpu = await runProbe(gpu)
  } catch (e) {
    await gpu.release()
    return { refusal: `ONNX Runtime's WebGPU provider fails on it (${(e as Error).message.split('\n')[0].slice(0, 200)})`, session: null }
  }
  const cpu = await openModelFolder(folder, { provider: 'wasm', threads })
  let refusal: string | null
  try {
    refusal = compareProbes(await runProbe(cpu), onGpu, V, prefix, folder.dtype)
  } catch (e) {
    await Promise.all([gpu.release(), cpu.release()])
    throw e
  }
  await (refusal ? gpu : cpu).release()
  return { refusal, session: refusal ? cpu : gpu }
}

/** The first way WebGPU's probe logits fail wasm's (non-finite, beyond tolerance, another argmax), or null. */
function compareProbes(onCpu: Float32Array[], onGpu: Float32Array[], V: number, prefix: number, dtype: ModelFolder['dtype']): string | null {
  const tolerance = dtype === 'float16' ? 5e-2 : 1e-3
  for (let r = 0; r < onCpu.length; r++)
    for (let p = 0; p < onCpu[r].length / V; p++) {
      const a = onCpu[r].subarray(p * V, (p + 1) * V)
      const b = onGpu[r].subarray(p * V, (p + 1) * V)
      const position = r === 0 ? p : prefix + r - 1
      const bad = b.findIndex((x) => !Number.isFinite(x))
      if (bad >= 0) return `WebGPU gives a non-finite logit (${b[bad]}) at position ${position} where wasm gives ${a[bad]} (${dtype})`
      const scale = Math.max(1, ...a.map(Math.abs))
      let worst = 0
      for (let i = 0; i < V; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale)
      if (worst > tolerance)
        return `WebGPU's logits differ from wasm's by up to ${worst.toPrecision(2)} (relative; tolerance ${tolerance} for ${dtype}) at position ${position}`
      if (argmax(a) !== argmax(b)) return `WebGPU picks another most likely character than wasm at position ${position}`
    }
  return null
}

/** Train the smoke model in the page: the trainer's TrainLoop, as `moas train --preset smoke` runs it. */
/**
 * `accum`: micro-batches per update (the smoke preset's 1 by default). `stateLocations`: where the state
 * was after each update (TrainingSession.stateLocation).
 * `stateOnDevice` (WebGPU): parameters and Adam moments stay in GPU buffers between updates (the default
 * there); false copies them to JS and back every update, as the wasm provider must. `stateOnDevice` in the
 * result says which ran.
 */
export async function trainInPage(opts: {
  variant: string
  steps: number
  seed: number
  provider: PageProvider
  stateOnDevice?: boolean
  accum?: number
  onRecord?: (r: LogRecord) => void
}): Promise<{ records: LogRecord[]; model: LoadedModel; stateOnDevice: boolean; stateLocations: string[] }> {
  const data = syntheticDataset()
  const protocol = { ...TRAIN_PRESETS.smoke, steps: opts.steps, accum: opts.accum ?? TRAIN_PRESETS.smoke.accum }
  const run = makeRunConfig(protocol, modelConfig('smoke', data.tokenizer.vocabSize, { attention: opts.variant }), data, opts.seed)
  const loop = await TrainLoop.create(run, data, opts.steps, freshStart(run, data), { provider: opts.provider, threads, stateOnDevice: opts.stateOnDevice })
  const records: LogRecord[] = []
  const stateLocations: string[] = []
  try {
    while (!loop.done) {
      const r = await loop.next()
      records.push(r)
      stateLocations.push(loop.session.stateLocation)
      opts.onRecord?.(r)
    }
    const params = new Map([...(await loop.session.params())].map(([k, v]) => [k, Float32Array.from(v)]))
    const model: LoadedModel = {
      config: run.model,
      params,
      tokenizer: data.tokenizer as CharTokenizer,
      extra: { training: { data: run.data, step: loop.step } },
      where: 'this page',
    }
    return { records, model, stateOnDevice: loop.session.stateOnDevice, stateLocations }
  } finally {
    await loop.release()
  }
}

/** A trained model as a zip of its exported model folder. */
export function modelFolderZip(model: LoadedModel): Uint8Array {
  const files = exportModelFiles(model)
  const enc = new TextEncoder()
  return zipSync(Object.fromEntries(Object.entries(files).map(([path, data]) => [`moas-model/${path}`, typeof data === 'string' ? enc.encode(data) : data])))
}

/**
 * Whether the memory-efficient attention core (ONNX Runtime's GroupQueryAttention) runs on `provider` in
 * this browser, and agrees with the composed core: a small random gqa model (head size 8), a prefill and a
 * decode step through both. The page itself keeps the composed core (exported model folders carry it);
 * this is what the browser tests record about the other one.
 */
export async function attentionKernelCheck(provider: PageProvider): Promise<{ maxDiff: number } | { error: string }> {
  const config = resolveConfig({ vocab_size: 20, block_size: 16, n_layer: 1, n_head: 4, n_kv_head: 2, n_embd: 32, dropout: 0, attention: 'gqa' })
  const params = initParams(buildLogitsGraph(config), 1) as Map<string, Float32Array>
  const logits: Float32Array[] = []
  try {
    for (const attention of ['composed', 'memory-efficient'] as const) {
      const s = await DecoderSession.create({ config, params }, { provider, attention })
      const a = await s.prefill([[1, 5, 2, 7, 3, 9]])
      const b = await s.step([4])
      logits.push(Float32Array.from([...a.logits, ...b.logits]))
      await s.release()
    }
  } catch (e) {
    return { error: (e as Error).message }
  }
  return { maxDiff: logits[0].reduce((m, v, i) => Math.max(m, Math.abs(v - logits[1][i])), 0) }
}

/**
 * Which op does WebGPU get wrong for a variant? The variant's forward graph (a small random model) runs on
 * wasm and WebGPU with the outputs of its first k nodes as the only outputs (everything later is pruned,
 * so no later op can reuse and overwrite a buffer being compared); a binary search finds the smallest k
 * whose outputs differ, and node k − 1 is the culprit, its inputs agreeing. For the browser tests and
 * upstream reports.
 */
export async function webgpuFirstDivergence(
  attention: string,
): Promise<
  { op: string; node: string; maxDiff: number; inputsMaxDiff: number; shape: string; inputs: string; attrs: string } | { same: true } | { error: string }
> {
  const config = resolveConfig({ vocab_size: 20, block_size: 16, n_layer: 1, n_head: 4, n_kv_head: 2, n_embd: 16, attention })
  const params = initParams(buildLogitsGraph(config), 3) as Map<string, Float32Array>
  const idx = hostTensor('int64', [1, 8], BigInt64Array.from([1n, 5n, 2n, 7n, 3n, 9n, 4n, 0n]))
  const diff = (a: ArrayLike<number | bigint>, b: ArrayLike<number | bigint>) => {
    let worst = 0
    for (let i = 0; i < a.length; i++) {
      const [x, y] = [Number(a[i]), Number(b[i])]
      if (x === y || (Number.isNaN(x) && Number.isNaN(y))) continue // equal infinities (masks) agree
      worst = Math.max(worst, Number.isNaN(x - y) ? Number.POSITIVE_INFINITY : Math.abs(x - y))
    }
    return worst
  }
  /** The first k nodes' outputs on both providers: per node, its diff. */
  const prefix = async (k: number) => {
    const g = buildLogitsGraph(config)
    g.outputs.splice(0) // only the probes: the logits' nodes past k are pruned
    const probed = g.nodes.filter((n) => n.op !== 'Identity' && n.outputs.length).slice(0, k)
    probed.forEach((n, i) => g.output(`probe.${i}`, n.outputs[0]))
    const runs: Record<string, { data: ArrayLike<number | bigint> }>[] = []
    for (const provider of ['wasm', 'webgpu'] as const) {
      const s = await Session.create(g, { provider })
      runs.push(await s.run({ ...paramFeeds(params, g.params), idx }))
      await s.release()
    }
    return { probed, diffs: probed.map((_, i) => diff(runs[0][`probe.${i}`].data, runs[1][`probe.${i}`].data)) }
  }
  try {
    const total = buildLogitsGraph(config).nodes.filter((n) => n.op !== 'Identity' && n.outputs.length).length
    const differs = async (k: number) => (await prefix(k)).diffs.some((d) => d > 1e-4)
    if (!(await differs(total))) return { same: true }
    let [lo, hi] = [0, total] // differs(lo) is false, differs(hi) is true
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1
      if (await differs(mid)) hi = mid
      else lo = mid
    }
    const { probed, diffs } = await prefix(hi)
    const node = probed[hi - 1]
    const index = new Map(probed.map((n, i) => [n.outputs[0] as Tensor, i]))
    const inputsMaxDiff = Math.max(0, ...node.inputs.map((t) => (t && index.has(t) ? diffs[index.get(t)!] : 0)))
    const inputs = node.inputs.map((t) => (t ? `${t.name} [${t.shape.join(', ')}] ${t.dtype}` : '-')).join('; ')
    const shape = `[${node.outputs[0].shape.join(', ')}]`
    return { op: node.op, node: node.name, maxDiff: diffs[hi - 1], inputsMaxDiff, shape, inputs, attrs: JSON.stringify(node.attrs) }
  } catch (e) {
    return { error: (e as Error).message }
  }
}

/**
 * tensor-core's device outputs on this browser's WebGPU, for the browser tests: y = 2x left in a GPU
 * buffer, fed back as x (y = 4x, no copy), then downloaded; `run` on the same session returns host memory;
 * a disposed tensor is refused as a feed.
 */
export async function deviceOutputCheck(): Promise<{ location: string; fedBack: number[]; viaRun: number[]; disposedFeed: string }> {
  const g = new Graph('double')
  g.output('y', ops.mul(g.input('x', 'float32', [4]), 2))
  const s = await Session.create(g, { provider: 'webgpu', deviceOutputs: ['y'] })
  try {
    const first = (await s.runOnDevice({ x: hostTensor('float32', [4], [1, 2, 3, -4]) })).device.y
    const second = (await s.runOnDevice({ x: first })).device.y
    const fedBack = Array.from((await second.download()).data as Float32Array)
    const location = first.location
    first.dispose()
    second.dispose()
    const viaRun = Array.from((await s.run({ x: hostTensor('float32', [4], [1, 2, 3, -4]) })).y.data as Float32Array)
    const disposedFeed = await s.runOnDevice({ x: first }).then(
      () => 'accepted',
      (e: Error) => e.message,
    )
    return { location, fedBack, viaRun, disposedFeed }
  } finally {
    await s.release()
  }
}
