/** Element types moas graphs use, with their ONNX TensorProto codes and byte sizes. */
export type DType = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'bool' | 'uint8' | 'uint16'

export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  uint16: 4,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
}

export const DTYPE_BYTES: Record<DType, number> = {
  float32: 4,
  uint8: 1,
  uint16: 2,
  int32: 4,
  int64: 8,
  bool: 1,
  float16: 2,
  float64: 8,
}

export const isFloat = (d: DType): boolean => d === 'float32' || d === 'float64' || d === 'float16'

/** Typed array that holds a tensor of this dtype on the JS side. */
export type TypedArrayFor = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array

export function allocTyped(dtype: DType, n: number): TypedArrayFor {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n)
    case 'float64':
      return new Float64Array(n)
    case 'int64':
      return new BigInt64Array(n)
    case 'int32':
      return new Int32Array(n)
    case 'bool':
    case 'uint8':
      return new Uint8Array(n)
    case 'float16':
    case 'uint16':
      return new Uint16Array(n)
  }
}

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** IEEE binary16 bits of each value (round to nearest, ties to even; overflow to ±Inf; NaN stays NaN). */
export function float16Bits(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length)
  for (let i = 0; i < values.length; i++) {
    f32[0] = values[i]
    const x = u32[0]
    const sign = (x >>> 16) & 0x8000
    const exp = (x >>> 23) & 0xff
    const mant = x & 0x7fffff
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0)
      continue
    }
    const e = exp - 127 + 15
    if (e >= 0x1f) {
      out[i] = sign | 0x7c00
      continue
    }
    if (e <= 0) {
      // subnormal half (or zero): shift the full mantissa (with its implicit 1) into place, rounding to even
      if (e < -10) {
        out[i] = sign
        continue
      }
      const m = mant | 0x800000
      const shift = 14 - e
      const half = m >>> shift
      const rest = m & ((1 << shift) - 1)
      const mid = 1 << (shift - 1)
      out[i] = sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0))
      continue
    }
    const half = (e << 10) | (mant >>> 13)
    const rest = mant & 0x1fff
    out[i] = sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0)) // a carry rounds up into the exponent, as it should
  }
  return out
}

/** The float32 value of each IEEE binary16 pattern. */
export function float16Values(bits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length)
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]
    const sign = h & 0x8000 ? -1 : 1
    const exp = (h >>> 10) & 0x1f
    const mant = h & 0x3ff
    out[i] = exp === 0 ? sign * mant * 2 ** -24 : exp === 0x1f ? (mant ? NaN : sign * Infinity) : sign * (1 + mant / 1024) * 2 ** (exp - 15)
  }
  return out
}
