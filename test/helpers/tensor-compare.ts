import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs-core'

/** A tensor of deterministic pseudo-random floats in [-1, 1) (a linear congruential sequence from `seed`). */
export function seededTensor(shape: number[], seed: number): tf.Tensor {
  const out = new Float32Array(tf.util.sizeFromShape(shape))
  let s = seed >>> 0 || 1
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    out[i] = s / 2 ** 31 - 1
  }
  return tf.tensor(out, shape)
}

/** max |a − b| / max |b|: the error relative to the reference tensor's scale (shapes must be equal). */
export function relativeError(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape)
  const x = a.dataSync()
  const y = b.dataSync()
  let diff = 0
  let size = 0
  for (let i = 0; i < y.length; i++) {
    diff = Math.max(diff, Math.abs(x[i]! - y[i]!))
    size = Math.max(size, Math.abs(y[i]!))
  }
  return diff / Math.max(size, 1e-30)
}
