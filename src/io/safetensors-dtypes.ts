/**
 * The element types of the safetensors format and their byte encodings, shared by the reader
 * (src/io/safetensors.ts) and the writer (src/io/safetensors-stream.ts). All values are stored
 * little-endian.
 *
 * In memory a tensor is one of four typed arrays (TensorData): reading upcasts every floating
 * dtype to Float32Array, keeps I64 as BigInt64Array, widens I32/I16/I8/U16 to Int32Array, and
 * gives U8 and BOOL as Uint8Array. Writing accepts those (and Float64Array) for any dtype of the
 * same family: floating data for F64/F32/F16/BF16 (F16 and BF16 rounded to nearest even),
 * integer data for the integer dtypes and BOOL, where each value must fit the dtype's range.
 * So whatever the reader returns can be written back under the dtype it was read from.
 */
import {endianness} from 'node:os'

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U16' | 'U8' | 'BOOL'

/** Bytes per element of each supported dtype. */
export const DTYPE_SIZE: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U16: 2,
  U8: 1,
  BOOL: 1,
}

export const FLOAT_DTYPES: ReadonlySet<SafetensorsDtype> = new Set<SafetensorsDtype>(['F64', 'F32', 'F16', 'BF16'])

type IntegerDtype = Exclude<SafetensorsDtype, 'F64' | 'F32' | 'F16' | 'BF16'>

/** Inclusive value range of each integer dtype (BOOL holds 0 or 1). */
const INTEGER_RANGE: Readonly<Record<IntegerDtype, readonly [bigint, bigint]>> = {
  I64: [-(2n ** 63n), 2n ** 63n - 1n],
  I32: [-(2n ** 31n), 2n ** 31n - 1n],
  I16: [-32768n, 32767n],
  I8: [-128n, 127n],
  U16: [0n, 65535n],
  U8: [0n, 255n],
  BOOL: [0n, 1n],
}

/** A tensor's values as the reader returns them. */
export type TensorData = Float32Array | Int32Array | BigInt64Array | Uint8Array

/** What the writer accepts: TensorData, or float64 values for the floating dtypes. */
export type WritableTensorData = TensorData | Float64Array

const LITTLE_ENDIAN_HOST = endianness() === 'LE'

/** Decodes raw little-endian bytes of `dtype` (buffer must start 8-byte aligned) into the upcast typed array. */
export function decodeTensorBytes(dtype: SafetensorsDtype, bytes: Uint8Array, count: number): TensorData {
  const buf = bytes.buffer
  const off = bytes.byteOffset
  const view = new DataView(buf, off, bytes.byteLength)
  switch (dtype) {
    case 'F32': {
      if (LITTLE_ENDIAN_HOST && off % 4 === 0) return new Float32Array(buf, off, count)
      const out = new Float32Array(count)
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true)
      return out
    }
    case 'F64': {
      const out = new Float32Array(count)
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true)
      return out
    }
    case 'F16': {
      const out = new Float32Array(count)
      const table = f16Table()
      for (let i = 0; i < count; i++) out[i] = table[view.getUint16(i * 2, true)]!
      return out
    }
    case 'BF16': {
      const out = new Float32Array(count)
      const bits = new Uint32Array(out.buffer)
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16
      return out
    }
    case 'I64': {
      if (LITTLE_ENDIAN_HOST && off % 8 === 0) return new BigInt64Array(buf, off, count)
      const out = new BigInt64Array(count)
      for (let i = 0; i < count; i++) out[i] = view.getBigInt64(i * 8, true)
      return out
    }
    case 'I32': {
      if (LITTLE_ENDIAN_HOST && off % 4 === 0) return new Int32Array(buf, off, count)
      const out = new Int32Array(count)
      for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, true)
      return out
    }
    case 'I16': {
      const out = new Int32Array(count)
      for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, true)
      return out
    }
    case 'U16': {
      const out = new Int32Array(count)
      for (let i = 0; i < count; i++) out[i] = view.getUint16(i * 2, true)
      return out
    }
    case 'I8': {
      const out = new Int32Array(count)
      for (let i = 0; i < count; i++) out[i] = view.getInt8(i)
      return out
    }
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buf, off, count)
  }
}

let F16_TABLE: Float32Array | undefined
/** All 65536 half-precision values as float32 (256 KiB, built once). */
function f16Table(): Float32Array {
  if (F16_TABLE) return F16_TABLE
  const t = new Float32Array(65536)
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1
    const exp = (h >> 10) & 0x1f
    const frac = h & 0x3ff
    if (exp === 0) t[h] = sign * frac * 2 ** -24
    else if (exp === 31) t[h] = frac ? NaN : sign * Infinity
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15)
  }
  F16_TABLE = t
  return t
}

/** float32 -> bfloat16 bits, round to nearest even; NaN stays a quiet NaN. */
export function float32ToBf16Bits(bits32: number): number {
  if ((bits32 & 0x7f800000) === 0x7f800000 && bits32 & 0x007fffff) return ((bits32 >>> 16) | 0x0040) & 0xffff
  const rounded = (bits32 >>> 0) + 0x7fff + ((bits32 >>> 16) & 1)
  return (rounded >>> 16) & 0xffff
}

const F32_SCRATCH = new Float32Array(1)
const U32_SCRATCH = new Uint32Array(F32_SCRATCH.buffer)
/** float32 value -> IEEE half bits, round to nearest even, overflow to infinity, subnormals kept. */
export function float32ToF16Bits(value: number): number {
  F32_SCRATCH[0] = value
  const x = U32_SCRATCH[0]!
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0)
  const e = exp - 127 + 15
  if (e >= 31) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign // underflows to signed zero
    mant |= 0x800000
    const shift = 14 - e
    let half = mant >>> shift
    const rem = mant & ((1 << shift) - 1)
    const halfway = 1 << (shift - 1)
    if (rem > halfway || (rem === halfway && half & 1)) half++
    return sign | half
  }
  let half = (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++ // may carry into the exponent, which is correct
  return sign | half
}

function isFloatData(data: WritableTensorData): data is Float32Array | Float64Array {
  return data instanceof Float32Array || data instanceof Float64Array
}

/**
 * Why `data` cannot be stored as `dtype` (undefined when it can): floating data only as a floating
 * dtype, integer data only as an integer dtype or BOOL with every value inside its range.
 */
export function encodingProblem(dtype: SafetensorsDtype, data: WritableTensorData): string | undefined {
  const mismatch = `cannot write ${data.constructor.name} data as ${dtype}`
  if (FLOAT_DTYPES.has(dtype)) return isFloatData(data) ? undefined : mismatch
  if (isFloatData(data)) return mismatch
  const [min, max] = INTEGER_RANGE[dtype as IntegerDtype]
  if (data instanceof BigInt64Array) {
    if (dtype === 'I64') return undefined
    for (let i = 0; i < data.length; i++) if (data[i]! < min || data[i]! > max) return outOfRange(dtype, data[i]!, i, min, max)
    return undefined
  }
  const lo = Number(min)
  const hi = Number(max)
  for (let i = 0; i < data.length; i++) if (data[i]! < lo || data[i]! > hi) return outOfRange(dtype, data[i]!, i, min, max)
  return undefined
}

function outOfRange(dtype: SafetensorsDtype, value: number | bigint, index: number, min: bigint, max: bigint): string {
  return `value ${value} at index ${index} does not fit ${dtype} [${min}, ${max}]`
}

/**
 * The little-endian bytes of `data` stored as `dtype` (checked with encodingProblem first). Data
 * already in the stored layout (F32 from Float32Array, F64 from Float64Array, I64 from
 * BigInt64Array, I32 from Int32Array on a little-endian host; U8/BOOL from Uint8Array) is returned
 * as a view without copying.
 */
export function encodeTensorBytes(dtype: SafetensorsDtype, data: WritableTensorData): Uint8Array {
  const sameLayout =
    ((dtype === 'U8' || dtype === 'BOOL') && data instanceof Uint8Array) ||
    (LITTLE_ENDIAN_HOST &&
      ((dtype === 'F32' && data instanceof Float32Array) ||
        (dtype === 'F64' && data instanceof Float64Array) ||
        (dtype === 'I64' && data instanceof BigInt64Array) ||
        (dtype === 'I32' && data instanceof Int32Array)))
  if (sameLayout) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  const n = data.length
  const out = new Uint8Array(n * DTYPE_SIZE[dtype])
  const view = new DataView(out.buffer)
  switch (dtype) {
    case 'F64':
      for (let i = 0; i < n; i++) view.setFloat64(i * 8, data[i] as number, true)
      break
    case 'F32':
      for (let i = 0; i < n; i++) view.setFloat32(i * 4, data[i] as number, true)
      break
    case 'F16':
      for (let i = 0; i < n; i++) view.setUint16(i * 2, float32ToF16Bits(data[i] as number), true)
      break
    case 'BF16': {
      const f = data instanceof Float32Array ? data : Float32Array.from(data as Float64Array)
      const bits = new Uint32Array(f.buffer, f.byteOffset, n)
      for (let i = 0; i < n; i++) view.setUint16(i * 2, float32ToBf16Bits(bits[i]!), true)
      break
    }
    case 'I64':
      for (let i = 0; i < n; i++) view.setBigInt64(i * 8, BigInt(data[i]!), true)
      break
    case 'I32':
      for (let i = 0; i < n; i++) view.setInt32(i * 4, Number(data[i]), true)
      break
    case 'I16':
      for (let i = 0; i < n; i++) view.setInt16(i * 2, Number(data[i]), true)
      break
    case 'U16':
      for (let i = 0; i < n; i++) view.setUint16(i * 2, Number(data[i]), true)
      break
    case 'I8':
      for (let i = 0; i < n; i++) view.setInt8(i, Number(data[i]))
      break
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < n; i++) view.setUint8(i, Number(data[i]))
      break
  }
  return out
}
