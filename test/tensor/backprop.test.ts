import assert from 'node:assert/strict'
import {test} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {variableGrads} from '../../src/tensor/backprop.js'
import {initRandomEncoder} from '../../src/model/encoder.js'
import {shared, useTestBackend, BUILTINS} from '../helpers/env.js'

function assertSameGrads(a: tf.NamedTensorMap, b: tf.NamedTensorMap, tol = 1e-5): void {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort())
  for (const name of Object.keys(a)) {
    const x = a[name]!.dataSync()
    const y = b[name]!.dataSync()
    assert.equal(x.length, y.length, name)
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i]! - y[i]!) <= tol * Math.max(1, Math.abs(y[i]!)), `${name}[${i}]: ${x[i]} vs tfjs ${y[i]}`)
  }
}

test('backprop: same loss and gradients as tf.variableGrads through a BERT forward pass, with a lower memory peak and no leaks', async (t) => {
  await useTestBackend()
  const tokenizerDir = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!tokenizerDir) return
  const enc = await initRandomEncoder({registry: BUILTINS, arch: 'bert', tokenizerDir, layers: 2, hidden: 32, heads: 2, intermediate: 64, seed: 3})
  // Activations must outweigh the parameters for the peak to say anything: 16 texts of ~40 tokens.
  const texts = Array.from({length: 16}, (_, i) => `${'the quick brown fox jumps over the lazy dog '.repeat(i % 2 ? 4 : 3)}测试${i}`)
  const batch = await enc.tokenize(texts)
  const vars = [...enc.variables.values()]
  // Dropout off (training: false) so both runs compute the same function.
  const loss = () => tf.tidy(() => {
    const pooled = enc.pool(enc.forward(batch, {training: false}).lastHiddenState, batch, {normalize: true})
    return tf.sum(tf.square(tf.matMul(pooled, pooled, false, true))) as tf.Scalar
  })
  const before = tf.memory().numTensors
  let ours!: {value: tf.Scalar; grads: tf.NamedTensorMap}
  let theirs!: {value: tf.Scalar; grads: tf.NamedTensorMap}
  // tf.profile reuses one profile object, so take each peak before the next run.
  const oursPeak = (await tf.profile(() => {
    ours = variableGrads(loss, vars)
  })).peakBytes
  const theirsPeak = (await tf.profile(() => {
    theirs = tf.variableGrads(loss, vars)
  })).peakBytes
  assert.ok(Math.abs(ours.value.dataSync()[0]! - theirs.value.dataSync()[0]!) < 1e-5)
  assertSameGrads(ours.grads, theirs.grads)
  assert.ok(
    oursPeak < 0.85 * theirsPeak,
    `peak bytes during backprop: ours ${oursPeak} vs tf.variableGrads ${theirsPeak} (expected clearly lower)`,
  )
  tf.dispose([ours.value, theirs.value, ...Object.values(ours.grads), ...Object.values(theirs.grads)])
  assert.equal(tf.memory().numTensors, before, 'tensors left behind by one gradient computation')
  enc.dispose()
})

test('backprop: gradients passed through unchanged, shared inputs and unused variables are handled like tfjs', async () => {
  await useTestBackend()
  const a = tf.variable(tf.tensor1d([1, -2, 3]), true, 'bp-a')
  const b = tf.variable(tf.tensor1d([0.5, 0.25, -1]), true, 'bp-b')
  const unused = tf.variable(tf.tensor1d([7]), true, 'bp-unused')
  // a + a and identity-like reshapes make gradient functions hand dy through; b is used twice.
  const f = () => tf.sum(tf.mul(tf.reshape(tf.add(a, a), [3, 1]), tf.reshape(tf.add(b, tf.mul(b, b)), [3, 1]))) as tf.Scalar
  const before = tf.memory().numTensors
  const ours = variableGrads(f, [a, b, unused])
  const theirs = tf.variableGrads(f, [a, b, unused])
  assertSameGrads(ours.grads, theirs.grads, 1e-6)
  assert.equal(ours.grads['bp-unused'], undefined)
  tf.dispose([ours.value, theirs.value, ...Object.values(ours.grads), ...Object.values(theirs.grads)])
  assert.equal(tf.memory().numTensors, before)
  // Inside another gradient computation it defers to tfjs (which keeps the tape for higher orders).
  const x = tf.scalar(3)
  const d2 = tf.grad((z: tf.Tensor) => {
    const inner = variableGrads(() => tf.sum(tf.mul(tf.mul(a, z), tf.mul(a, z))) as tf.Scalar, [a])
    return tf.sum(inner.grads['bp-a']!)
  })(x)
  // The inner gradient is 2 a z^2, so d/dz sum(2 a z^2) = 4 z sum(a) = 4 * 3 * 2 = 24.
  assert.ok(Math.abs(d2.dataSync()[0]! - 24) < 1e-4, `second-order gradient ${d2.dataSync()[0]}`)
  assert.throws(() => variableGrads(() => tf.mul(a, 2) as unknown as tf.Scalar, [a]), /must return a scalar tensor, got rank 1/)
  tf.dispose([a, b, unused, x, d2])
})

test('backprop: a saved tensor is a second reference, not an Identity kernel on the tape; gradients of gradients still flow through saved tensors', async () => {
  await useTestBackend()
  const before = tf.memory().numTensors
  const init = tf.tensor1d([0.5, -1.5, 2])
  const x = tf.variable(init, true, 'direct-saves-x')
  init.dispose()
  try {
    // Mul saves both inputs, Sin and Square theirs: three kernels' saves, no Identity.
    const f = () => tf.sum(tf.mul(tf.sin(x), tf.square(x))) as tf.Scalar
    const profile = await tf.profile(() => {
      const {value, grads} = variableGrads(f, [x])
      tf.dispose([value, ...Object.values(grads)])
    })
    const identities = profile.kernels.filter((k) => k.name === 'Identity').length
    assert.equal(identities, 0, `${identities} Identity kernels: saved tensors were cloned through the engine`)
    // d/dx (x² sin x) = x² cos x + 2x sin x, whose derivative -x² sin x + 4x cos x + 2 sin x needs the
    // inner gradient's saved tensors on the outer tape (tfjs's clone at gradient depth 2; without
    // those nodes tfjs finds no path from x). (Not through a saved output, as Exp's: tfjs records the
    // clone of an output before the kernel that made it, and its second derivative misses that term.)
    const second = tf.grad((t: tf.Tensor) => tf.sum(tf.grad((u: tf.Tensor) => tf.sum(tf.mul(tf.sin(u), tf.square(u))))(t)))(x)
    const got = Array.from(second.dataSync())
    const want = [0.5, -1.5, 2].map((v) => -v * v * Math.sin(v) + 4 * v * Math.cos(v) + 2 * Math.sin(v))
    got.forEach((g, i) => assert.ok(Math.abs(g - want[i]!) <= 1e-4 * Math.max(1, Math.abs(want[i]!)), `d²/dx² [${i}]: ${g} vs ${want[i]}`))
    second.dispose()
  } finally {
    x.dispose()
  }
  assert.equal(tf.memory().numTensors, before, 'tensors leaked')
})
