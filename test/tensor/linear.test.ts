import assert from 'node:assert/strict'
import {test} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {linear} from '../../src/tensor/ops.js'
import {TEST_BACKEND, useTestBackend} from '../helpers/env.js'
import {relativeError, seededTensor as rand} from '../helpers/tensor-compare.js'

// ops.linear (torch: the fused CodiembLinear kernels, one ATen product each; cpu: tf.fused.matMul)
// against x Wᵀ + b written with plain tfjs ops, whose gradients tfjs derives op by op.

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
