/**
 * A thin session layer over onnxruntime-common: the same serialized graph runs on onnxruntime-node (cpu,
 * cuda, webgpu) or onnxruntime-web (wasm; webgpu in browsers). The provider is chosen by name and used
 * alone: if it is missing, creating the session fails with a clear error instead of silently running
 * elsewhere. Feeds are validated against the graph's declared inputs before every run.
 */
import { defaultThreads, loadOrt, maxThreads, type Ort, type Provider } from './backend'
import { allocTyped, type DType, type TypedArrayFor } from './dtype'
import { RuntimeError } from './errors'
import { type Graph, OPSET, type Shape } from './graph'
import { type SerializeOptions, serialize } from './serialize'

export type { Provider } from './backend'
export const PROVIDERS: readonly Provider[] = ['cpu', 'cuda', 'webgpu', 'wasm']

/** A tensor on the JS side. */
export interface HostTensor {
  dtype: DType
  shape: readonly number[]
  data: TypedArrayFor
}

export function hostTensor(dtype: DType, shape: readonly number[], data?: TypedArrayFor | ArrayLike<number>): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1)
  let arr: TypedArrayFor
  if (data && ArrayBuffer.isView(data)) arr = data as TypedArrayFor
  else {
    arr = allocTyped(dtype, n)
    if (data)
      for (let i = 0; i < n; i++)
        (arr as unknown as (number | bigint)[])[i] = dtype === 'int64' ? BigInt((data as ArrayLike<number>)[i]) : (data as ArrayLike<number>)[i]
  }
  if (arr.length !== n) throw new RuntimeError(`hostTensor: ${arr.length} values do not fill shape [${shape.join(',')}] (${n} elements)`)
  return { dtype, shape, data: arr }
}

/**
 * A tensor ONNX Runtime keeps on the device (a WebGPU buffer): what `runOnDevice` returns for the outputs
 * named in `deviceOutputs`. Feed it to any session on the same provider without a copy; `download()`
 * copies it to JS; `dispose()` frees the buffer (a tensor no feed table holds any more must be disposed,
 * or the device memory leaks until the page or process ends).
 */
export class DeviceTensor {
  private disposed = false
  /** @internal */
  constructor(
    readonly dtype: DType,
    readonly shape: readonly number[],
    /** @internal the onnxruntime Tensor holding the buffer. */
    readonly ortTensor: import('onnxruntime-common').Tensor,
  ) {}

  get location(): string {
    return this.ortTensor.location
  }

  get isDisposed(): boolean {
    return this.disposed
  }

  /** Copy the values to JS (the device buffer stays). */
  async download(): Promise<HostTensor> {
    if (this.disposed) throw new RuntimeError('DeviceTensor.download: the tensor was disposed')
    return { dtype: this.dtype, shape: this.shape, data: (await this.ortTensor.getData(false)) as TypedArrayFor }
  }

  dispose(): void {
    if (this.disposed) return
    this.disposed = true
    this.ortTensor.dispose()
  }
}

/** A feed: values in JS, or a tensor an earlier run left on the device. */
export type Feed = HostTensor | DeviceTensor

/** Providers whose outputs ONNX Runtime's JS API can leave on the device ('gpu-buffer': WebGPU only, in onnxruntime-web and -node 1.30). */
export const DEVICE_OUTPUT_PROVIDERS: readonly Provider[] = ['webgpu']

export interface SessionOptions {
  provider?: Provider
  /**
   * Outputs ONNX Runtime should leave on the device (`preferredOutputLocation: 'gpu-buffer'`), returned by
   * `runOnDevice` as DeviceTensors. WebGPU only: the cpu and wasm providers already hand back host memory,
   * and onnxruntime-node 1.30's JS API has no CUDA memory location (its 'gpu-buffer' is a WebGPU buffer).
   */
  deviceOutputs?: readonly string[]
  /** Intra-op threads (cpu); default one per core, or MOAS_THREADS. */
  threads?: number
  optimization?: 'disabled' | 'basic' | 'extended' | 'all'
  /** Write the optimized graph here (Node only) to inspect what ONNX Runtime fused. */
  optimizedModelPath?: string
  /** The external-data files ONNX bytes refer to (serializeWithExternalData), by the path the model names. */
  externalData?: { path: string; data: Uint8Array }[]
}

interface Signature {
  name: string
  dtype: DType
  shape: Shape
}

const ORT_TYPE: Record<string, DType> = {
  float32: 'float32',
  float64: 'float64',
  int64: 'int64',
  int32: 'int32',
  bool: 'bool',
  uint8: 'uint8',
  uint16: 'uint16',
  float16: 'float16',
}

export class Session {
  private constructor(
    private readonly ort: Ort,
    private readonly session: import('onnxruntime-common').InferenceSession,
    readonly provider: Provider,
    readonly inputs: readonly Signature[],
    readonly outputs: readonly Signature[],
    /** False for raw ONNX bytes, whose declared shapes we do not parse: ONNX Runtime checks those. */
    private readonly validate: boolean,
  ) {}

  /** Create a session from a Graph (serialized here) or ONNX bytes plus their declared input signatures. */
  static async create(model: Graph | Uint8Array, opts: SessionOptions & SerializeOptions = {}): Promise<Session> {
    const provider = opts.provider ?? 'cpu'
    if (!PROVIDERS.includes(provider)) throw new RuntimeError(`unknown execution provider '${provider}'; choose one of ${PROVIDERS.join(', ')}`)
    const ort = await loadOrt(provider)
    let bytes: Uint8Array
    let inputs: Signature[] = []
    let outputs: Signature[] = []
    if (model instanceof Uint8Array) bytes = model
    else {
      bytes = serialize(model, opts)
      const embedded = new Set(opts.params?.keys() ?? [])
      inputs = [...model.inputs, ...model.params.map((p) => p.tensor).filter((t) => !embedded.has(t.name))].map((t) => ({
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
      }))
      outputs = model.outputs.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }))
    }
    const threads = opts.threads ?? defaultThreads()
    checkThreads(threads)
    const deviceOutputs = [...(opts.deviceOutputs ?? [])]
    if (deviceOutputs.length && !DEVICE_OUTPUT_PROVIDERS.includes(provider))
      throw new RuntimeError(
        `deviceOutputs needs the webgpu provider, not '${provider}': cpu and wasm outputs are host memory already, and onnxruntime-node's JS API cannot keep a CUDA tensor on the GPU; leave deviceOutputs empty`,
      )
    if (deviceOutputs.length && outputs.length) {
      const known = new Set(outputs.map((o) => o.name))
      const unknown = deviceOutputs.filter((n) => !known.has(n))
      if (unknown.length)
        throw new RuntimeError(
          `deviceOutputs names ${unknown.slice(0, 4).join(', ')}${unknown.length > 4 ? ' and more' : ''}, not outputs of the graph (its outputs: ${[...known].slice(0, 6).join(', ')}${known.size > 6 ? ', ...' : ''})`,
        )
    }
    if (provider === 'wasm') (ort.env as unknown as { wasm: { numThreads: number } }).wasm.numThreads = threads
    let session: import('onnxruntime-common').InferenceSession
    try {
      session = await ort.InferenceSession.create(bytes, {
        executionProviders: [provider],
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: opts.optimization ?? 'all',
        // In a page ONNX Runtime Web prints warnings (shape ops placed on the CPU) with console.error: errors only.
        ...(provider === 'wasm' || provider === 'webgpu' ? { logSeverityLevel: 3 as const } : {}),
        ...(opts.optimizedModelPath ? { optimizedModelFilePath: opts.optimizedModelPath } : {}),
        ...(opts.externalData ? { externalData: opts.externalData } : {}),
        ...(deviceOutputs.length ? { preferredOutputLocation: Object.fromEntries(deviceOutputs.map((n) => [n, 'gpu-buffer' as const])) } : {}),
      })
    } catch (e) {
      throw new RuntimeError(explainLoadError((e as Error).message, provider, model instanceof Uint8Array ? null : model))
    }
    return new Session(ort, session, provider, inputs, outputs, !(model instanceof Uint8Array))
  }

  /**
   * Run the graph. Every declared input must be fed with its dtype and a shape that fits its declaration.
   * Every output comes back to JS (device outputs are downloaded and their buffers freed).
   */
  async run(feeds: Record<string, Feed>, fetch?: readonly string[]): Promise<Record<string, HostTensor>> {
    const { host, device } = await this.runOnDevice(feeds, fetch)
    for (const [name, t] of Object.entries(device)) {
      host[name] = await t.download()
      t.dispose()
    }
    return host
  }

  /** Run the graph, leaving the outputs named in `deviceOutputs` on the device (the caller disposes them). */
  async runOnDevice(
    feeds: Record<string, Feed>,
    fetch?: readonly string[],
  ): Promise<{ host: Record<string, HostTensor>; device: Record<string, DeviceTensor> }> {
    this.check(feeds)
    const ortFeeds: Record<string, import('onnxruntime-common').Tensor> = {}
    for (const [name, t] of Object.entries(feeds)) {
      if (t instanceof DeviceTensor) {
        if (t.isDisposed) throw new RuntimeError(`feed '${name}' is a DeviceTensor that was disposed; feed the tensor that replaced it`)
        ortFeeds[name] = t.ortTensor
      } else {
        // biome-ignore lint/suspicious/noExplicitAny: the ORT constructor's overloads pair each dtype with its array type; HostTensor holds the same pairs
        ortFeeds[name] = new this.ort.Tensor(t.dtype as any, t.data as any, t.shape as number[])
      }
    }
    const res = fetch ? await this.session.run(ortFeeds, fetch as string[]) : await this.session.run(ortFeeds)
    const host: Record<string, HostTensor> = {}
    const device: Record<string, DeviceTensor> = {}
    for (const [name, t] of Object.entries(res)) {
      const dtype = ORT_TYPE[t.type] ?? (t.type as DType)
      if (t.location === 'cpu' || t.location === 'cpu-pinned') host[name] = { dtype, shape: t.dims as number[], data: t.data as TypedArrayFor }
      else device[name] = new DeviceTensor(dtype, t.dims as number[], t)
    }
    return { host, device }
  }

  /** Input names as ONNX Runtime reports them after loading the model (embedded parameters excluded). */
  get inputNames(): readonly string[] {
    return this.session.inputNames
  }

  /** Output names as ONNX Runtime reports them. */
  get outputNames(): readonly string[] {
    return this.session.outputNames
  }

  async release(): Promise<void> {
    await this.session.release()
  }

  private check(feeds: Record<string, Feed>): void {
    if (!this.validate) return
    const missing = this.inputs.filter((s) => !(s.name in feeds)).map((s) => s.name)
    if (missing.length)
      throw new RuntimeError(
        `missing feed${missing.length > 1 ? 's' : ''}: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ` and ${missing.length - 8} more` : ''}; the graph needs ${this.inputs.length} inputs`,
      )
    const known = new Set(this.inputs.map((s) => s.name))
    const extra = Object.keys(feeds).filter((n) => !known.has(n))
    if (extra.length)
      throw new RuntimeError(
        `unknown feed${extra.length > 1 ? 's' : ''}: ${extra.join(', ')}; the graph's inputs are ${[...known].slice(0, 8).join(', ')}${known.size > 8 ? ', ...' : ''}`,
      )
    const sym = new Map<string, [number, string]>()
    for (const s of this.inputs) {
      const t = feeds[s.name]
      if (t.dtype !== s.dtype) throw new RuntimeError(`feed '${s.name}' has dtype ${t.dtype}, the graph expects ${s.dtype}`)
      const want = `[${s.shape.join(',')}]`
      if (t.shape.length !== s.shape.length) throw new RuntimeError(`feed '${s.name}' has shape [${t.shape.join(',')}], the graph expects ${want}`)
      s.shape.forEach((d, i) => {
        const got = t.shape[i]
        if (typeof d === 'number') {
          if (got !== d) throw new RuntimeError(`feed '${s.name}' has shape [${t.shape.join(',')}], the graph expects ${want} (dimension ${i} must be ${d})`)
        } else {
          const seen = sym.get(d)
          if (seen && seen[0] !== got)
            throw new RuntimeError(`feed '${s.name}' gives '${d}' = ${got}, but feed '${seen[1]}' gave ${seen[0]}; symbolic dims must agree across feeds`)
          sym.set(d, [got, s.name])
        }
      })
      const n = t.shape.reduce((a, b) => a * b, 1)
      if (!(t instanceof DeviceTensor) && t.data.length !== n)
        throw new RuntimeError(`feed '${s.name}' holds ${t.data.length} values but its shape [${t.shape.join(',')}] needs ${n}`)
    }
  }
}

/** Turn ONNX Runtime's session-creation failure into a message naming the node and the fix. */
function explainLoadError(msg: string, provider: Provider, graph: Graph | null): string {
  const findNode = (op: string, name?: string) => graph?.nodes.find((n) => n.name === name && n.op === op) ?? graph?.nodes.find((n) => n.op === op)
  if ((provider === 'cuda' || provider === 'webgpu') && /provider|shared librar|adapter|vulkan|cuda|webgpu/i.test(msg))
    return `execution provider '${provider}' is not available here (${msg.trim()}). ${PROVIDER_HELP[provider]}`
  const unknown = /No Op registered for (\S+) with domain_version of (\d+)/.exec(msg)
  if (unknown) {
    const node = findNode(unknown[1])
    return `ONNX Runtime rejected the model: op '${unknown[1]}' ${node ? `(node '${node.name}') ` : ''}is not an ONNX opset ${graph?.opset ?? OPSET} op it knows in domain '${node?.domain || 'ai.onnx'}'; check the op type (case-sensitive) and domain, or build it from standard ops. (ONNX Runtime on '${provider}': ${msg.trim()})`
  }
  const noKernel = /Could not find an implementation for (\w+)\((\d+)\) node with name '([^']*)'/.exec(msg)
  if (noKernel) {
    const node = findNode(noKernel[1], noKernel[3])
    const dtypes = node ? [...new Set(node.inputs.filter((t) => t).map((t) => t!.dtype))].join(', ') : 'unknown'
    return `ONNX Runtime has no kernel for op '${noKernel[1]}' ${node ? `(node '${node.name}') ` : ''}with these input dtypes (${dtypes}) on '${provider}'; cast its inputs to a supported dtype (usually float32) around it. (${msg.trim()})`
  }
  return `ONNX Runtime could not load the model on '${provider}': ${msg}`
}

const PROVIDER_HELP: Record<Provider, string> = {
  cpu: '',
  wasm: '',
  cuda: "The CUDA provider needs an NVIDIA GPU, CUDA 12 and onnxruntime-node's CUDA libraries, which its install script downloads only when asked: run `ONNXRUNTIME_NODE_INSTALL=cuda12 node script/install.js` inside node_modules/onnxruntime-node on a machine that can reach the download (see the README); use provider 'cpu' otherwise.",
  webgpu:
    "WebGPU needs a GPU adapter: in Node, libvulkan and a Vulkan driver; in a browser, navigator.gpu (Chrome/Edge 113+, or --enable-unsafe-webgpu). Use 'cpu' (Node) or 'wasm' (browser) otherwise.",
}

/** A thread count a session can use: a positive integer, at most maxThreads() (RuntimeError naming the limit). */
export function checkThreads(threads: number): void {
  if (!(Number.isInteger(threads) && threads >= 1)) throw new RuntimeError(`threads must be a positive integer, got ${threads}`)
  const max = maxThreads()
  if (threads > max)
    throw new RuntimeError(
      `${threads} threads is far above this machine's core count: ONNX Runtime starts one thread each and slows to a crawl; use at most ${max}`,
    )
}

export { defaultThreads, maxThreads, threadsFromEnv } from './backend'
