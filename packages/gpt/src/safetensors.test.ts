import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { readSafetensors, SafetensorsError, writeSafetensors } from './safetensors'

const fixture = fileURLToPath(new URL('../test/fixtures/mha.safetensors', import.meta.url))

function withHeader(header: unknown, data = new Uint8Array(0)): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header))
  const out = new Uint8Array(8 + json.length + data.length)
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true)
  out.set(json, 8)
  out.set(data, 8 + json.length)
  return out
}

describe('safetensors', () => {
  it('round-trips float32, float64 and int64 with metadata, data 8-byte aligned', () => {
    const tensors = new Map([
      ['a', { dtype: 'float32' as const, shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, -6.5]) }],
      ['b', { dtype: 'float64' as const, shape: [1], data: new Float64Array([Math.PI]) }],
      ['c', { dtype: 'int64' as const, shape: [2], data: new BigInt64Array([-1n, 2n ** 40n]) }],
    ])
    const bytes = writeSafetensors(tensors, { format: 'pt' })
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true))
    expect((8 + headerLen) % 8).toBe(0)
    const back = readSafetensors(bytes)
    expect(back.metadata).toEqual({ format: 'pt' })
    for (const [name, t] of tensors) {
      const r = back.tensors.get(name)!
      expect(r.dtype).toBe(t.dtype)
      expect(r.shape).toEqual(t.shape)
      expect(Array.from(r.data as any)).toEqual(Array.from(t.data as any))
    }
  })

  it('reads the PyTorch-written fixtures', () => {
    const { tensors } = readSafetensors(readFileSync(fixture))
    expect(tensors.get('input.idx')!.dtype).toBe('int64')
    expect(tensors.get('input.idx')!.shape).toEqual([2, 8])
    expect(tensors.get('param.transformer.wte.weight')!.shape).toEqual([11, 8])
    expect(tensors.get('out.logits')!.dtype).toBe('float64')
  })

  it('rejects truncated files, bad headers, unknown dtypes and out-of-range offsets', () => {
    const good = writeSafetensors({ w: { dtype: 'float32', shape: [4], data: new Float32Array(4) } })
    expect(() => readSafetensors(good.subarray(0, 5), 'm.safetensors')).toThrow(/m\.safetensors: truncated: 5 bytes/)
    expect(() => readSafetensors(good.subarray(0, 12))).toThrow(/truncated: the header needs/)
    expect(() => readSafetensors(good.subarray(0, good.length - 1))).toThrow(/tensor 'w': truncated file: its data ends at byte 16 .* only 15 bytes/)
    const junk = new Uint8Array(16).fill(0xff)
    expect(() => readSafetensors(junk)).toThrow(/bad header: its declared length .* implausible/)
    const notJson = good.slice()
    notJson[8] = 0x7b + 1 // '|' instead of '{'
    expect(() => readSafetensors(notJson)).toThrow(/bad header: not valid UTF-8 JSON/)
    expect(() => readSafetensors(withHeader({ w: { dtype: 'Q7', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)))).toThrow(
      /tensor 'w': unsupported dtype "Q7"/,
    )
    expect(() => readSafetensors(withHeader({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)))).toThrow(
      /hold 4 bytes, but float32\[2\] needs 8/,
    )
    expect(() => readSafetensors(withHeader({ w: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, new Uint8Array(4)))).toThrow(
      /data ends at byte 12 .* only 4 bytes/,
    )
    expect(() => readSafetensors(withHeader({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }))).toThrow(/bad data_offsets/)
    expect(() =>
      readSafetensors(
        withHeader({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)),
      ),
    ).toThrow(/'a' and 'b' overlap/)
    expect(() => readSafetensors(withHeader([1, 2]))).toThrow(SafetensorsError)
  })

  it('refuses to write data that does not match its dtype or shape', () => {
    expect(() => writeSafetensors({ w: { dtype: 'float32', shape: [3], data: new Float32Array(2) } })).toThrow(/2 values do not fill shape \[3\]/)
    expect(() => writeSafetensors({ w: { dtype: 'float32', shape: [2], data: new Float64Array(2) } })).toThrow(/needs a Float32Array, got a Float64Array/)
  })
})
