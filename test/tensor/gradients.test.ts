import {test} from 'node:test'
import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs-core'
import {GRADIENT_KERNELS, registerGradients} from '../../src/tensor/gradients.js'
import {useTestBackend} from '../helpers/env.js'

/** Deterministic values in [-1.5, 1.5] away from 0 (so |x|, relu, max have no kinks at the points). */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n)
  let s = (seed * 2654435761) % 2147483647
  for (let k = 0; k < 5; k++) s = (s * 16807) % 2147483647
  for (let i = 0; i < n; i++) {
    s = (s * 16807) % 2147483647
    const u = s / 2147483647
    out[i] = (u < 0.5 ? -1 : 1) * (0.2 + 1.3 * Math.abs(u - 0.5) * 2)
  }
  return out
}

/** Central finite differences of a scalar function, in float64 on the JS side. */
function numericGrad(f: (x: tf.Tensor) => tf.Scalar, x: Float32Array, shape: number[], eps = 1e-2): Float64Array {
  const g = new Float64Array(x.length)
  for (let i = 0; i < x.length; i++) {
    const at = (d: number) => {
      const v = Float32Array.from(x)
      v[i]! += d
      return tf.tidy(() => f(tf.tensor(v, shape)).dataSync()[0]!)
    }
    g[i] = (at(eps) - at(-eps)) / (2 * eps)
  }
  return g
}

function check(label: string, f: (x: tf.Tensor) => tf.Scalar, shape: number[], seed = 1, positive = false): void {
  const n = shape.reduce((a, b) => a * b, 1)
  let x = values(n, seed)
  if (positive) x = x.map((v) => Math.abs(v) + 0.3)
  const analytic = tf.tidy(() => tf.grad(f)(tf.tensor(x, shape)).dataSync())
  const numeric = numericGrad(f, x, shape)
  for (let i = 0; i < n; i++) {
    const tol = 2e-2 * Math.max(1, Math.abs(numeric[i]!))
    assert.ok(Math.abs(analytic[i]! - numeric[i]!) <= tol, `${label}: d/dx[${i}] analytic ${analytic[i]} vs numeric ${numeric[i]}`)
  }
}

/** A fixed weighting so each output element gets a distinct upstream gradient. */
function weighted(y: tf.Tensor): tf.Scalar {
  const w = tf.tensor(values(y.size, 99), y.shape)
  return tf.sum(tf.mul(y, w)) as tf.Scalar
}

test('registered gradients match finite differences', async () => {
  await useTestBackend()
  registerGradients()
  const c = tf.tensor(values(6, 7), [2, 3])
  const row = tf.tensor(values(3, 8), [3])
  const cases: [string, (x: tf.Tensor) => tf.Tensor, number[], boolean?][] = [
    ['add broadcast', (x) => tf.add(x, row), [2, 3]],
    ['add broadcast (x is the small side)', (x) => tf.add(c, x), [3]],
    ['sub', (x) => tf.sub(row, x), [2, 3]],
    ['mul broadcast', (x) => tf.mul(x, tf.slice(x, [0, 0], [1, 3])), [2, 3]],
    ['div', (x) => tf.div(c, tf.add(tf.abs(x), 0.5)), [2, 3]],
    ['div numerator', (x) => tf.div(x, 1.7), [2, 3]],
    ['maximum/minimum', (x) => tf.add(tf.maximum(x, c), tf.minimum(x, 0.1)), [2, 3]],
    ['squaredDifference', (x) => tf.squaredDifference(x, row), [2, 3]],
    ['pow', (x) => tf.pow(x, tf.scalar(3)), [2, 3]],
    ['pow exponent', (x) => tf.pow(tf.scalar(1.7), x), [2, 3]],
    ['addN', (x) => tf.addN([x, tf.mul(x, 2), c]), [2, 3]],
    ['unary', (x) => tf.addN([tf.neg(x), tf.square(x), tf.exp(x), tf.erf(x), tf.tanh(x), tf.sigmoid(x), tf.softplus(x), tf.relu(x), tf.abs(x), tf.sin(x), tf.cos(x), tf.atan(x), tf.expm1(x)]), [2, 3]],
    ['positive unary', (x) => tf.addN([tf.sqrt(x), tf.rsqrt(x), tf.log(x), tf.log1p(x), tf.reciprocal(x)]), [2, 3], true],
    ['clip/leakyRelu/elu', (x) => tf.addN([tf.clipByValue(x, -0.5, 0.7), tf.leakyRelu(x, 0.1), tf.elu(x)]), [2, 3]],
    ['sum/mean keepDims', (x) => tf.add(tf.sum(x, 1, true), tf.mean(x, 1, true)), [2, 3]],
    ['sum/mean all', (x) => tf.add(tf.sum(x), tf.mean(tf.square(x))), [2, 3]],
    ['max/min', (x) => tf.add(tf.max(x, 0), tf.sum(tf.min(x, 1))), [2, 3]],
    ['prod', (x) => tf.prod(x, 1), [2, 3]],
    ['cumsum', (x) => tf.cumsum(x, 1), [2, 3]],
    ['reshape/transpose/expandDims', (x) => tf.expandDims(tf.transpose(tf.reshape(x, [3, 2])), 0), [2, 3]],
    ['slice/pad', (x) => tf.pad(tf.slice(x, [0, 1], [2, 2]), [[1, 0], [0, 2]]), [2, 3]],
    ['concat/stack', (x) => tf.concat([x, tf.reshape(tf.stack([x, c], 1), [2, 6])], 1), [2, 3]],
    ['unstack/split', (x) => tf.add(tf.unstack(x)[1]!, tf.reshape(tf.split(x, [1, 1], 0)[0]!, [3])), [2, 3]],
    ['tile', (x) => tf.tile(x, [2, 3]), [2, 3]],
    ['gather axis 0', (x) => tf.gather(x, tf.tensor1d([1, 0, 1], 'int32')), [2, 3]],
    ['gather axis 1', (x) => tf.gather(x, tf.tensor2d([[2, 2], [0, 1]], [2, 2], 'int32'), 1), [2, 3]],
    ['softmax', (x) => tf.softmax(x), [2, 3]],
    ['logSoftmax/logSumExp', (x) => tf.add(tf.logSoftmax(x), tf.logSumExp(x, 1, true)), [2, 3]],
    ['moments', (x) => tf.add(tf.moments(x, -1, true).variance, tf.moments(x, -1, true).mean), [2, 3]],
    ['norm', (x) => tf.norm(x, 'euclidean', 1), [2, 3]],
    ['where', (x) => tf.where(tf.greater(x, 0), tf.mul(x, 3), tf.square(x)), [2, 3]],
  ]
  for (const [label, f, shape, positive] of cases) check(label, (x) => weighted(f(x)), shape, 3, positive)
  for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]] as const) {
    const other = tf.tensor(values(12, 5), [2, 3, 2])
    check(`batch matMul a (tA=${tA}, tB=${tB})`, (x) => weighted(tf.matMul(tA ? tf.transpose(tf.transpose(x, [0, 2, 1]), [0, 2, 1]) : x, tB ? tf.transpose(other, [0, 2, 1]) : other, false, tB)), [2, 2, 3])
    check(`matMul b (tA=${tA}, tB=${tB})`, (x) => weighted(tf.matMul(tA ? tf.transpose(c) : c, tB ? tf.transpose(x) : x, tA, tB)), [3, 4])
  }
  check('matMul with a broadcast batch', (x) => weighted(tf.matMul(tf.tensor(values(12, 4), [2, 2, 3]), x)), [3, 2])
  tf.dispose([c, row])
})

test('every kernel the gradients cover has a registered gradient', () => {
  registerGradients()
  for (const k of GRADIENT_KERNELS) assert.ok(tf.getGradient(k), `no gradient for ${k}`)
})
