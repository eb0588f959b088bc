/**
 * The safetensors format, hand-written (it is tiny): an unsigned 64-bit little-endian header length N,
 * N bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}}`,
 * then the raw little-endian data; offsets are relative to the end of the header. Reading validates
 * everything and fails with a SafetensorsError that says what is wrong.
 */

export type SafeDType = 'float32' | 'float64' | 'int64' | 'int32' | 'float16' | 'uint8' | 'bool'

export type SafeArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint16Array | Uint8Array

export interface SafeTensor {
  dtype: SafeDType
  shape: number[]
  data: SafeArray
}

export class SafetensorsError extends Error {
  override name = 'SafetensorsError'
}

const TAG: Record<SafeDType, string> = { float32: 'F32', float64: 'F64', int64: 'I64', int32: 'I32', float16: 'F16', uint8: 'U8', bool: 'BOOL' }
const FROM_TAG: Record<string, SafeDType> = Object.fromEntries(Object.entries(TAG).map(([k, v]) => [v, k as SafeDType]))
const BYTES: Record<SafeDType, number> = { float32: 4, float64: 8, int64: 8, int32: 4, float16: 2, uint8: 1, bool: 1 }

/** Largest header we accept (the reference implementation's limit), so a garbage length fails fast. */
const MAX_HEADER = 100_000_000

function view(dtype: SafeDType, buf: ArrayBuffer, offset: number, n: number): SafeArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(buf, offset, n)
    case 'float64':
      return new Float64Array(buf, offset, n)
    case 'int64':
      return new BigInt64Array(buf, offset, n)
    case 'int32':
      return new Int32Array(buf, offset, n)
    case 'float16':
      return new Uint16Array(buf, offset, n)
    case 'uint8':
    case 'bool':
      return new Uint8Array(buf, offset, n)
  }
}

function expectedArray(dtype: SafeDType): string {
  return {
    float32: 'Float32Array',
    float64: 'Float64Array',
    int64: 'BigInt64Array',
    int32: 'Int32Array',
    float16: 'Uint16Array',
    uint8: 'Uint8Array',
    bool: 'Uint8Array',
  }[dtype]
}

/** Encode tensors (8-byte dtypes first so every tensor stays aligned, then by name). */
export function writeSafetensors(tensors: ReadonlyMap<string, SafeTensor> | Record<string, SafeTensor>, metadata?: Record<string, string>): Uint8Array {
  const entries = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))] as [string, SafeTensor][]
  entries.sort(([a, x], [b, y]) => BYTES[y.dtype] - BYTES[x.dtype] || (a < b ? -1 : a > b ? 1 : 0))
  const header: Record<string, unknown> = {}
  if (metadata) header.__metadata__ = metadata
  let offset = 0
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new SafetensorsError("'__metadata__' is reserved and cannot name a tensor")
    if (!(t.dtype in TAG)) throw new SafetensorsError(`tensor '${name}': unsupported dtype '${t.dtype}'; supported: ${Object.keys(TAG).join(', ')}`)
    const n = t.shape.reduce((a, b) => a * b, 1)
    if (t.data.length !== n) throw new SafetensorsError(`tensor '${name}': ${t.data.length} values do not fill shape [${t.shape.join(',')}] (${n} elements)`)
    if (t.data.constructor.name !== expectedArray(t.dtype))
      throw new SafetensorsError(`tensor '${name}': dtype ${t.dtype} needs a ${expectedArray(t.dtype)}, got a ${t.data.constructor.name}`)
    header[name] = { dtype: TAG[t.dtype], shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] }
    offset += t.data.byteLength
  }
  let json = new TextEncoder().encode(JSON.stringify(header))
  const pad = (8 - ((8 + json.length) % 8)) % 8 // spaces so the data starts 8-byte aligned
  if (pad) {
    const padded = new Uint8Array(json.length + pad).fill(0x20)
    padded.set(json)
    json = padded
  }
  const out = new Uint8Array(8 + json.length + offset)
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true)
  out.set(json, 8)
  let at = 8 + json.length
  for (const [, t] of entries) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at)
    at += t.data.byteLength
  }
  return out
}

export interface SafetensorsFile {
  tensors: Map<string, SafeTensor>
  metadata: Record<string, string>
}

/**
 * Decode a safetensors file. `what` names the file in error messages. Data are copied into fresh,
 * aligned typed arrays (file offsets need not be aligned).
 */
export function readSafetensors(bytes: Uint8Array, what = 'safetensors file'): SafetensorsFile {
  if (bytes.length < 8) throw new SafetensorsError(`${what}: truncated: ${bytes.length} bytes, less than the 8-byte header length`)
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true)
  if (n > BigInt(MAX_HEADER)) throw new SafetensorsError(`${what}: bad header: its declared length ${n} is implausible (not a safetensors file?)`)
  const headerLen = Number(n)
  if (8 + headerLen > bytes.length) throw new SafetensorsError(`${what}: truncated: the header needs ${headerLen} bytes but only ${bytes.length - 8} follow`)
  let header: unknown
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)))
  } catch (e) {
    throw new SafetensorsError(`${what}: bad header: not valid UTF-8 JSON (${(e as Error).message})`)
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header))
    throw new SafetensorsError(`${what}: bad header: expected a JSON object of tensors`)
  const dataStart = 8 + headerLen
  const dataLen = bytes.length - dataStart
  const tensors = new Map<string, SafeTensor>()
  let metadata: Record<string, string> = {}
  const ranges: [number, number, string][] = []
  // biome-ignore lint/suspicious/noExplicitAny: an untrusted header, validated field by field below
  for (const [name, info] of Object.entries(header as Record<string, any>)) {
    if (name === '__metadata__') {
      if (info === null || typeof info !== 'object' || Object.values(info).some((v) => typeof v !== 'string'))
        throw new SafetensorsError(`${what}: bad header: __metadata__ must map strings to strings`)
      metadata = info
      continue
    }
    const where = `${what}: tensor '${name}'`
    if (info === null || typeof info !== 'object') throw new SafetensorsError(`${where}: bad header entry ${JSON.stringify(info)}`)
    const dtype = FROM_TAG[info.dtype]
    if (!dtype) throw new SafetensorsError(`${where}: unsupported dtype ${JSON.stringify(info.dtype)}; supported: ${Object.values(TAG).join(', ')}`)
    const shape = info.shape
    if (!Array.isArray(shape) || shape.some((d: unknown) => !Number.isInteger(d) || (d as number) < 0))
      throw new SafetensorsError(`${where}: bad shape ${JSON.stringify(shape)}`)
    const offs = info.data_offsets
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o: unknown) => Number.isSafeInteger(o) && (o as number) >= 0) || offs[1] < offs[0])
      throw new SafetensorsError(`${where}: bad data_offsets ${JSON.stringify(offs)}`)
    const [begin, end] = offs as [number, number]
    const count = (shape as number[]).reduce((a, b) => a * b, 1)
    if (end - begin !== count * BYTES[dtype])
      throw new SafetensorsError(
        `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dtype}[${shape.join(',')}] needs ${count * BYTES[dtype]}`,
      )
    if (end > dataLen)
      throw new SafetensorsError(`${where}: truncated file: its data ends at byte ${end} of the data section, which holds only ${dataLen} bytes`)
    ranges.push([begin, end, name])
    // a fresh, aligned copy (not bytes.slice: on a Node Buffer that is a view into a shared pool)
    const copy = new Uint8Array(bytes.subarray(dataStart + begin, dataStart + end))
    tensors.set(name, { dtype, shape: shape as number[], data: view(dtype, copy.buffer, 0, count) })
  }
  ranges.sort((a, b) => a[0] - b[0])
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) throw new SafetensorsError(`${what}: bad header: tensors '${ranges[i - 1][2]}' and '${ranges[i][2]}' overlap`)
  }
  return { tensors, metadata }
}
