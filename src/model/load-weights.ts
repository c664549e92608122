/**
 * Checkpoint weights into backend tensors, streamed tensor by tensor: each weight's byte range is
 * read with one positioned read (src/io/safetensors.ts readRaw; never the whole file, nor a whole
 * shard of a `model.safetensors.index.json` checkpoint), converted to the tensor the encoder keeps,
 * and its bytes dropped before the next weight is read. So loading holds the weights once, plus one
 * weight in transit (its stored bytes and, when it is widened, its float32 values).
 *
 * What a weight becomes:
 *   BF16, backend keeping bf16 weights (torch, --precision bf16)  bfloat16 storage from the stored
 *        bits directly (no float32 copy on the way); saved BF16 again;
 *   F32 / F16 / BF16 / F64 otherwise                               float32 (F32 bytes used in place,
 *        the others widened exactly, F64 rounded), on the torch backend copied into ATen at once.
 * The cpu backend computes in float32 only (it refuses --precision bf16), so a BF16 checkpoint loads
 * there widened to float32, and saves as F32 unless asked otherwise.
 *
 * Every value must be finite: a NaN or infinity fails the load naming the file, tensor and index.
 */
import {endianness} from 'node:os'
import type * as tf from '@tensorflow/tfjs-core'
import type {SafetensorsFile} from '../io/safetensors.js'
import {decodeTensorBytes, FLOAT_DTYPES, type SafetensorsDtype} from '../io/safetensors-dtypes.js'
import {firstNonFiniteIndex} from '../io/finite-values.js'
import {bf16BitsTensor, weightTensor} from '../tensor/storage.js'
import {EncoderLoadError} from './consistency.js'

const LITTLE_ENDIAN_HOST = endianness() === 'LE'

/** The first index of a bfloat16 NaN or infinity (exponent bits all ones) in `bits`, else -1. */
function firstNonFiniteBf16(bits: Uint16Array): number {
  for (let i = 0; i < bits.length; i++) if ((bits[i]! & 0x7f80) === 0x7f80) return i
  return -1
}

/**
 * Reads checkpoint tensor `file` of `weights` into a backend tensor of `shape` (already checked against
 * config.json), keeping it bfloat16 when `keepBf16` and it is stored BF16; returns the tensor and its
 * stored dtype.
 */
export async function loadWeight(weights: SafetensorsFile, file: string, shape: number[], keepBf16: boolean): Promise<{tensor: tf.Tensor; dtype: SafetensorsDtype}> {
  const raw = await weights.readRaw(file)
  const where = `${weights.path}: tensor "${file}"`
  if (!FLOAT_DTYPES.has(raw.dtype)) throw new EncoderLoadError(`${where} has dtype ${raw.dtype}, expected a floating type`)
  const count = raw.shape.reduce((a, b) => a * b, 1)
  const notFinite = (value: number, index: number) =>
    new EncoderLoadError(`${where} holds ${value} at index ${index}; refusing weights that are not finite (a damaged or diverged checkpoint)`)
  if (raw.dtype === 'BF16' && keepBf16 && LITTLE_ENDIAN_HOST) {
    const bits = new Uint16Array(raw.bytes.buffer, raw.bytes.byteOffset, count)
    const bad = firstNonFiniteBf16(bits)
    if (bad >= 0) throw notFinite(new Float32Array(new Uint32Array([bits[bad]! << 16]).buffer)[0]!, bad)
    return {tensor: bf16BitsTensor(bits, shape), dtype: raw.dtype}
  }
  const values = decodeTensorBytes(raw.dtype, raw.bytes, count) as Float32Array
  const bad = firstNonFiniteIndex(values)
  if (bad >= 0) throw notFinite(values[bad]!, bad)
  if (raw.dtype === 'BF16' && keepBf16) {
    // A big-endian host: the decoded values are exact bfloat16s; store their upper halves.
    const words = new Uint32Array(values.buffer, values.byteOffset, count)
    return {tensor: bf16BitsTensor(Uint16Array.from(words, (w) => w >>> 16), shape), dtype: raw.dtype}
  }
  return {tensor: weightTensor(values, shape), dtype: raw.dtype}
}
