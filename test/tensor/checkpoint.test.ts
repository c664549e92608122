import assert from 'node:assert/strict'
import {test} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {checkpoint} from '../../src/tensor/checkpoint.js'
import {variableGrads} from '../../src/tensor/backprop.js'
import {dropout} from '../../src/tensor/ops.js'
import {initRandomEncoder} from '../../src/model/encoder.js'
import {shared, useTestBackend, BUILTINS} from '../helpers/env.js'
import {peakTensorBytes} from '../helpers/memory.js'

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = 1e-5): void {
  assert.equal(a.length, b.length, what)
  let scale = 1e-8
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!))
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol * scale, `${what}[${i}]: ${a[i]} vs ${b[i]} (scale ${scale})`)
}

test('checkpoint: same value and gradients as the direct function (seeded dropout inside), under tf.grads and variableGrads, nothing left behind', async () => {
  await useTestBackend()
  const w = tf.variable(tf.randomNormal([8, 8], 0, 0.5, 'float32', 1), true, 'ckpt-w')
  const x = tf.randomNormal([6, 8], 0, 1, 'float32', 2)
  const mask = tf.tensor2d(Array.from({length: 48}, (_, i) => (i % 5 === 0 ? 0 : 1)), [6, 8])
  // A layer with a residual, a nonlinearity, seeded dropout and a constant it reads.
  const layer = ([input, weight]: tf.Tensor[], [m]: tf.Tensor[]) => tf.add(input!, tf.mul(dropout(tf.tanh(tf.matMul(input!, weight!)), 0.3, 77), m!))
  const loss = (useCheckpoint: boolean) => (input: tf.Tensor) =>
    tf.tidy(() => {
      let h = input
      for (let l = 0; l < 3; l++) h = useCheckpoint ? checkpoint(layer, [h, w], [mask]) : layer([h, w], [mask])
      return tf.sum(tf.square(h)) as tf.Scalar
    })
  const before = tf.memory().numTensors
  const plain = tf.valueAndGrads(loss(false))([x])
  const ckpt = tf.valueAndGrads(loss(true))([x])
  assertClose(ckpt.value.dataSync(), plain.value.dataSync(), 'value')
  assertClose(ckpt.grads[0]!.dataSync(), plain.grads[0]!.dataSync(), 'dL/dx (tf.grads)')
  const plainVars = variableGrads(() => loss(false)(x), [w])
  const ckptVars = variableGrads(() => loss(true)(x), [w])
  const tfjsVars = tf.variableGrads(() => loss(true)(x), [w])
  assertClose(ckptVars.grads['ckpt-w']!.dataSync(), plainVars.grads['ckpt-w']!.dataSync(), 'dL/dw (variableGrads)')
  assertClose(tfjsVars.grads['ckpt-w']!.dataSync(), plainVars.grads['ckpt-w']!.dataSync(), 'dL/dw (tf.variableGrads)')
  // The weight gradient is not trivially zero, so the comparison says something.
  assert.ok(plainVars.grads['ckpt-w']!.dataSync().some((v) => Math.abs(v) > 1e-3))
  tf.dispose([plain.value, ...plain.grads, ckpt.value, ...ckpt.grads])
  for (const r of [plainVars, ckptVars, tfjsVars]) tf.dispose([r.value, ...Object.values(r.grads)])
  assert.equal(tf.memory().numTensors, before, 'tensors left behind')
  tf.dispose([w, x, mask])
})

test('checkpointed BERT layers: gradients equal the direct ones with dropout on, at a lower memory peak, no leaks', async (t) => {
  await useTestBackend()
  const tokenizerDir = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!tokenizerDir) return
  const enc = await initRandomEncoder({registry: BUILTINS, arch: 'bert', tokenizerDir, layers: 4, hidden: 32, heads: 2, intermediate: 64, seed: 9})
  const texts = Array.from({length: 12}, (_, i) => `${'the quick brown fox jumps over the lazy dog '.repeat(1 + (i % 3))}测试${i}`)
  const batch = await enc.tokenize(texts)
  const vars = [...enc.variables.values()]
  // Training mode (dropout 0.1 on hidden states and attention probabilities), fixed seed; the
  // loss reads a middle layer too, as mid-infonce does.
  const loss = (checkpointLayers: boolean) => () =>
    tf.tidy(() => {
      const {lastHiddenState, hiddenStates} = enc.forward(batch, {training: true, seed: 1234, checkpointLayers})
      const last = enc.pool(lastHiddenState, batch, {normalize: true})
      const middle = enc.pool(hiddenStates[2]!, batch, {normalize: true})
      return tf.add(tf.sum(tf.square(tf.matMul(last, last, false, true))), tf.sum(tf.matMul(middle, last, false, true))) as tf.Scalar
    })
  const before = tf.memory().numTensors
  const direct = await peakTensorBytes(() => variableGrads(loss(false), vars))
  const ckpt = await peakTensorBytes(() => variableGrads(loss(true), vars))
  const viaTfjs = tf.variableGrads(loss(true), vars)
  assertClose(ckpt.result.value.dataSync(), direct.result.value.dataSync(), 'loss')
  let nonzero = 0
  for (const [name, g] of Object.entries(direct.result.grads)) {
    const expected = g.dataSync()
    assertClose(ckpt.result.grads[name]!.dataSync(), expected, name, 1e-4)
    assertClose(viaTfjs.grads[name]!.dataSync(), expected, `${name} (tf.variableGrads)`, 1e-4)
    if (expected.some((v) => Math.abs(v) > 1e-6)) nonzero++
  }
  assert.ok(nonzero > vars.length / 2, `only ${nonzero} of ${vars.length} gradients are nonzero`)
  assert.ok(
    ckpt.peakBytes < 0.8 * direct.peakBytes,
    `peak tensor bytes with checkpointing ${ckpt.peakBytes}, without ${direct.peakBytes} (expected clearly lower)`,
  )
  for (const r of [direct.result, ckpt.result, viaTfjs]) tf.dispose([r.value, ...Object.values(r.grads)])
  assert.equal(tf.memory().numTensors, before, 'tensors left behind by checkpointed gradient computations')
  enc.dispose()
})
