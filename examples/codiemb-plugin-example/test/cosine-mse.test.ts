import assert from 'node:assert/strict'
import {before, describe, it} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {builtinRegistry, selectBackend} from 'codiemb'
import {lossProperties} from 'codiemb/testing'
import {create} from '../src/cosine-mse.js'

before(async () => {
  await selectBackend(await builtinRegistry(), 'cpu')
})

describe('cosine-mse: the properties codiemb expects of every loss', () => {
  for (const property of lossProperties(create({scale: 2}))) it(property.name, () => property.check())
})

describe('cosine-mse', () => {
  it('equals the mean squared error of cosine similarity and label, with the analytic gradient', () => {
    const loss = create({scale: 2})
    const left = tf.tensor2d([[0.6, 0.8], [1, 0], [0, 1]])
    const right = tf.tensor2d([[1, 0], [0.6, 0.8], [0, 1]])
    const labels = [0.5, 0.1, 1]
    // s = [0.6, 0.6, 1]; (s − y)² = [0.01, 0.25, 0]; mean 0.0866…, scaled by 2
    const value = loss.compute({left, right, labels})
    assert.ok(Math.abs(value.dataSync()[0]! - (2 * 0.26) / 3) < 1e-6)
    value.dispose()
    // ∂L/∂left_i = scale · 2/n · (s_i − y_i) · right_i
    const grad = tf.grad((x: tf.Tensor) => loss.compute({left: x as tf.Tensor2D, right, labels}))(left)
    const residuals = [0.1, 0.5, 0]
    const expected = [[1, 0], [0.6, 0.8], [0, 0]].map((row, i) => row.map((v) => ((2 * 2) / 3) * residuals[i]! * v))
    const got = grad.arraySync() as number[][]
    for (let i = 0; i < 3; i++) for (let j = 0; j < 2; j++) assert.ok(Math.abs(got[i]![j]! - expected[i]![j]!) < 1e-6, `grad[${i}][${j}]`)
    tf.dispose([left, right, grad])
  })

  it('rejects a batch whose labels do not match its pairs', () => {
    const x = tf.ones([2, 2]) as tf.Tensor2D
    assert.throws(() => create().compute({left: x, right: x, labels: [1]}), /2 pairs but 1 labels/)
    x.dispose()
  })
})
