/** Element types moas graphs use, with their ONNX TensorProto codes and byte sizes. */
export type DType = 'float32' | 'float64' | 'float16' | 'int64' | 'int32' | 'bool' | 'uint8' | 'uint16'

export const ONNX_DTYPE: Record<DType, number> = {
  float32: 1, uint8: 2, uint16: 4, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11,
}

export const DTYPE_BYTES: Record<DType, number> = {
  float32: 4, uint8: 1, uint16: 2, int32: 4, int64: 8, bool: 1, float16: 2, float64: 8,
}

export const isFloat = (d: DType): boolean => d === 'float32' || d === 'float64' || d === 'float16'

/** Typed array that holds a tensor of this dtype on the JS side. */
export type TypedArrayFor = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Uint16Array

export function allocTyped(dtype: DType, n: number): TypedArrayFor {
  switch (dtype) {
    case 'float32': return new Float32Array(n)
    case 'float64': return new Float64Array(n)
    case 'int64': return new BigInt64Array(n)
    case 'int32': return new Int32Array(n)
    case 'bool': case 'uint8': return new Uint8Array(n)
    case 'float16': case 'uint16': return new Uint16Array(n)
  }
}
