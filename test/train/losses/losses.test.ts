import assert from 'node:assert/strict'
import {test} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {Ajv} from 'ajv'
import {useTestBackend} from '../../helpers/env.js'
import {entries} from '../../../src/train/losses/index.js'
import type {LossModule, TrainingLoss} from '../../../src/train/losses/types.js'
import {irInfoNce} from '../../../src/train/losses/ir-infonce.js'

const NAMES = ['codiemb-sts', 'cosent', 'ir-infonce', 'mid-infonce', 'pearson', 'pro', 'rank-kl']

test('every loss entry has a strict options schema, a task, and loads a module that builds it', async () => {
  assert.deepEqual(entries.map((e) => e.name).sort(), NAMES)
  const ajv = new Ajv({strict: false})
  for (const entry of entries) {
    assert.equal(entry.kind, 'loss')
    assert.ok(entry.optionsSchema, `${entry.name} has an options schema`)
    assert.equal(entry.optionsSchema!.additionalProperties, false, `${entry.name}: additionalProperties false`)
    const validate = ajv.compile(entry.optionsSchema!)
    assert.equal(validate({}), true)
    assert.equal(validate({bogus: 1}), false, `${entry.name} rejects unknown options`)
    const mod = (await entry.load()) as LossModule
    const loss: TrainingLoss = mod.create({})
    assert.equal(loss.task, entry.meta?.task)
    assert.equal(loss.name, entry.name)
  }
})

test('ir-infonce: a query’s other positives are not in its denominator; other queries’ items are', async () => {
  await useTestBackend()
  // Two queries, P=2, N=1, in 2-d. Query 0's second positive is identical to the query: if it
  // were a candidate for slot 0 the loss would grow. Moving another query's positive towards q0
  // must raise the loss (it is an in-batch negative).
  const q = tf.tensor2d([[1, 0], [0, 1]])
  const passages = (q0p2: number[], q1p1: number[]) =>
    tf.tensor2d([[0.8, 0.6], q0p2, [-1, 0], q1p1, [0, 1], [0, -1]])
  const value = (t: tf.Scalar) => {
    const v = t.dataSync()[0]
    t.dispose()
    return v
  }
  const base = value(irInfoNce(q, passages([0.6, 0.8], [0.6, 0.8]), 2, 1, 0.1))
  // Slot 1's positive of query 0 moves; slot 0's term must not change → only slot-1 share changes.
  const alone = value(irInfoNce(tf.tensor2d([[1, 0]]), tf.tensor2d([[0.8, 0.6], [0.6, 0.8], [-1, 0]]), 2, 1, 0.1))
  const expectedSlot0 = -Math.log(Math.exp(8) / (Math.exp(8) + Math.exp(-10)))
  const expectedSlot1 = -Math.log(Math.exp(6) / (Math.exp(6) + Math.exp(-10)))
  assert.ok(Math.abs(alone - (expectedSlot0 + expectedSlot1) / 2) < 1e-4, `single query: ${alone}`)
  const closerInBatch = value(irInfoNce(q, passages([0.6, 0.8], [1, 0]), 2, 1, 0.1))
  assert.ok(closerInBatch > base + 0.1, `another query’s positive near q0 is a negative: ${closerInBatch} vs ${base}`)
  q.dispose()
})

test('ir-infonce rejects a passage count that does not match P and N', async () => {
  await useTestBackend()
  const q = tf.zeros([2, 4]) as tf.Tensor2D
  const p = tf.zeros([5, 4]) as tf.Tensor2D
  assert.throws(() => irInfoNce(q, p, 2, 1, 0.02), /expected 2·\(2\+1\) = 6 passage rows/)
  tf.dispose([q, p])
})
