/** Helpers of the torch backend (backend.ts): dtype names and codes, shapes, device indices, tfjs values. */
import * as tf from '@tensorflow/tfjs-core'
import type {TorchDtype} from './addon.js'

type BackendValues = tf.backend_util.BackendValues

/** tfjs dtypes as the addon names them. */
export function torchDtype(dtype: tf.DataType): TorchDtype {
  switch (dtype) {
    case 'float32':
    case 'int32':
    case 'bool':
      return dtype
    default:
      throw new Error(`the torch backend does not support ${dtype} tensors`)
  }
}

/** The dtype codes of addon.conformTo (native/src/addon.cc kDtypeCodes). */
export const DTYPE_CODES: Record<TorchDtype, number> = {float32: 0, int32: 1, bool: 2, int64: 3, float64: 4, float16: 5, bfloat16: 6, uint8: 7}

export function sameShape(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export function deviceIndex(device: string): number {
  const m = /^cuda:(\d+)$/.exec(device)
  return m ? Number(m[1]) : 0
}

/** tfjs sometimes writes values in a wider array than the dtype (e.g. a Float32Array for int32). */
export function conformValues(values: BackendValues, dtype: tf.DataType): BackendValues {
  if (dtype === 'float32' && !(values instanceof Float32Array)) return Float32Array.from(values as ArrayLike<number>)
  if (dtype === 'int32' && !(values instanceof Int32Array)) return Int32Array.from(values as ArrayLike<number>)
  if (dtype === 'bool' && !(values instanceof Uint8Array)) return Uint8Array.from(values as ArrayLike<number>)
  return values
}
