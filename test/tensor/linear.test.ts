import assert from 'node:assert/strict'
import {test} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {linear} from '../../src/tensor/ops.js'
import {TEST_BACKEND, useTestBackend} from '../helpers/env.js'

// ops.linear (torch: the fused CodiembLinear kernels, one ATen product each; cpu: tf.fused.matMul)
// against x Wᵀ + b written with plain tfjs ops, whose gradients tfjs derives op by op.

function rand(shape: number[], seed: number): tf.Tensor {
  let s = seed
  const n = shape.reduce((a, b) => a * b, 1)
  return tf.tensor(Float32Array.from({length: n}, () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5)), shape)
}

function relativeError(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape)
  const x = a.dataSync()
  const y = b.dataSync()
  let diff = 0
  let scale = 0
  for (let i = 0; i < y.length; i++) {
    diff = Math.max(diff, Math.abs(x[i]! - y[i]!))
    scale = Math.max(scale, Math.abs(y[i]!))
  }
  return diff / scale
}

test(`linear (${TEST_BACKEND}): values and gradients of x, W and b equal x Wᵀ + b's within 1e-5 relative, with and without bias, and leak nothing`, async () => {
  await useTestBackend()
  const before = tf.memory().numTensors
  tf.tidy(() => {
    for (const [rows, inner, out] of [[37, 24, 40], [1, 8, 3], [64, 96, 32]] as const) {
      const x = rand([rows, inner], rows)
      const w = rand([out, inner], inner)
      const b = rand([out], out)
      const weights = rand([rows, out], 7)
      const loss = (f: (...a: tf.Tensor[]) => tf.Tensor) => (...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), weights)) as tf.Scalar
      const plain = (xi: tf.Tensor, wi: tf.Tensor, bi?: tf.Tensor) => (bi ? tf.add(tf.matMul(xi, wi, false, true), bi) : tf.matMul(xi, wi, false, true))
      for (const withBias of [true, false]) {
        const inputs = withBias ? [x, w, b] : [x, w]
        const ours = [linear(x as tf.Tensor2D, w, withBias ? b : undefined), ...tf.grads(loss((xi, wi, bi) => linear(xi as tf.Tensor2D, wi!, bi)))(inputs)]
        const theirs = [plain(x, w, withBias ? b : undefined), ...tf.grads(loss((xi, wi, bi) => plain(xi!, wi!, bi)))(inputs)]
        ;['y', 'dx', 'dW', 'db'].slice(0, ours.length).forEach((name, i) => {
          const e = relativeError(ours[i]!, theirs[i]!)
          assert.ok(e <= 1e-5, `[${rows}, ${inner}] x [${out}, ${inner}]ᵀ${withBias ? ' + b' : ''}: ${name} differs by ${e.toExponential(2)} relative`)
        })
      }
    }
  })
  assert.equal(tf.memory().numTensors, before, 'tensors leaked')
})
