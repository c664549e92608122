import {test} from 'node:test'
import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs-core'
import {qkvProjection} from '../../src/model/bert-family.js'
import {linear} from '../../src/tensor/ops.js'
import {useTestBackend} from '../helpers/env.js'

function rand(shape: number[], seed: number): tf.Tensor {
  let s = seed
  const n = shape.reduce((a, b) => a * b, 1)
  return tf.tensor(Float32Array.from({length: n}, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5)), shape)
}

/** max |a − b| / max |b|. */
function relativeError(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync(), y = b.dataSync()
  let diff = 0, scale = 0
  for (let i = 0; i < y.length; i++) {
    diff = Math.max(diff, Math.abs(x[i]! - y[i]!))
    scale = Math.max(scale, Math.abs(y[i]!))
  }
  return diff / scale
}

test('qkvProjection: one stacked product gives the values and gradients of three separate ones (≤ 1e-5 relative)', async () => {
  await useTestBackend()
  const H = 48
  const before = tf.memory().numTensors
  tf.tidy(() => {
    const x = rand([37, H], 1)
    const params = [rand([H, H], 2), rand([H], 3), rand([H, H], 4), rand([H], 5), rand([H, H], 6), rand([H], 7)]
    const weights = [rand([37, H], 8), rand([37, H], 9), rand([37, H], 10)]
    const objective = (outs: tf.Tensor[]) => tf.addN(outs.map((o, i) => tf.sum(tf.mul(o, weights[i]!)))) as tf.Scalar
    const fused = (...a: tf.Tensor[]) => qkvProjection(a[0] as tf.Tensor2D, a[1]!, a[2]!, a[3]!, a[4]!, a[5]!, a[6]!)
    const separate = (...a: tf.Tensor[]) => [0, 1, 2].map((i) => linear(a[0] as tf.Tensor2D, a[1 + 2 * i]!, a[2 + 2 * i]))
    const inputs = [x, ...params]
    const ours = [...fused(...inputs), ...tf.grads((...a: tf.Tensor[]) => objective(fused(...a)))(inputs)]
    const theirs = [...separate(...inputs), ...tf.grads((...a: tf.Tensor[]) => objective(separate(...a)))(inputs)]
    const names = ['q', 'k', 'v', 'dx', 'dWq', 'dbq', 'dWk', 'dbk', 'dWv', 'dbv']
    ours.forEach((t, i) => {
      assert.deepEqual(t.shape, theirs[i]!.shape, names[i])
      const e = relativeError(t, theirs[i]!)
      assert.ok(e <= 1e-5, `${names[i]} differs by ${e.toExponential(2)} relative`)
    })
  })
  assert.equal(tf.memory().numTensors, before)
})
