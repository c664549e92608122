/**
 * The loss property checks of codiemb/testing (src/testing/loss-properties.ts) on every built-in
 * loss, one test per loss and property, generated from the registry: a loss added to
 * src/train/losses/index.ts is checked without touching this file. Needs no ../shared fixtures.
 */
import assert from 'node:assert/strict'
import {before, describe, it} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {BUILTIN_PLUGIN} from '../../../src/builtins.js'
import {lossProperties, registeredLosses} from '../../../src/testing/index.js'
import type {LossModule, StsEmbeddings, StsLoss} from '../../../src/train/losses/types.js'
import {BUILTINS, useTestBackend} from '../../helpers/env.js'

const losses = await registeredLosses(BUILTINS, {plugin: BUILTIN_PLUGIN})

it('finds every built-in loss in the registry', () => {
  assert.deepEqual(
    losses.map((l) => l.entry.name),
    BUILTINS.list('loss').map((e) => e.name),
  )
  assert.ok(losses.length >= 7, `only ${losses.length} built-in losses`)
})

for (const {entry, loss} of losses) {
  describe(`loss ${entry.name} (${loss.task})`, () => {
    before(async () => {
      await useTestBackend()
    })
    for (const property of lossProperties(loss)) it(property.name, () => property.check())
  })
}

describe('ir-infonce with in-batch negatives only (P=1, N=0)', () => {
  before(async () => {
    await useTestBackend()
  })
  it('passes every property, the ordering one through another query’s positive', async () => {
    const {create} = (await BUILTINS.load('loss', 'ir-infonce')) as LossModule
    const properties = lossProperties(create({positives: 1, negatives: 0}))
    assert.match(properties.map((p) => p.name).join('\n'), /another query’s positive nearest/)
    for (const property of properties) property.check()
  })
})

/** Broken losses: each property must reject the loss that breaks it, with a message that says how. */
describe('the property checks catch broken losses', () => {
  before(async () => {
    await useTestBackend()
  })
  const sts = (name: string, compute: (batch: StsEmbeddings) => tf.Scalar): StsLoss => ({task: 'sts', name, needsMiddleLayer: false, compute})
  const similarities = (b: StsEmbeddings) => tf.sum(tf.mul(b.left, b.right), 1)
  const check = (loss: StsLoss, property: RegExp, message: RegExp) => {
    const p = lossProperties(loss).find((x) => property.test(x.name))
    assert.ok(p, `no property matches ${property}`)
    assert.throws(() => p.check(), (error: Error) => error.name === 'AssertionError' && message.test(error.message))
  }

  it('a non-finite value', () => {
    check(sts('log-zero', (b) => tf.tidy(() => tf.log(tf.sum(tf.mul(similarities(b), 0))) as tf.Scalar)), /finite scalar on a random/, /log-zero: .* the loss is -Infinity/)
  })
  it('a value that is not a scalar', () => {
    check(sts('per-pair', (b) => tf.tidy(() => similarities(b) as unknown as tf.Scalar)), /finite scalar on a random/, /expected a scalar/)
  })
  it('a gradient that is not finite where all texts coincide', () => {
    // The spread of the similarities: 0 on a degenerate batch, where √ has an infinite slope.
    const spread = sts('spread', (b) =>
      tf.tidy(() => {
        const s = similarities(b)
        return tf.sqrt(tf.sum(tf.square(tf.sub(s, tf.mean(s))))) as tf.Scalar
      }),
    )
    check(spread, /finite gradients when every text/, /spread: .* ∂loss\/∂(left|right) has a non-finite entry/)
  })
  it('an ordering the wrong way round', () => {
    // Rewards similarity on low-label pairs: the reverse of what an STS loss should do.
    const inverted = sts('inverted', (b) => tf.tidy(() => tf.mean(tf.mul(similarities(b), tf.tensor1d(Array.from(b.labels)))) as tf.Scalar))
    check(inverted, /ordered like the labels/, /inverted: the correctly ordered batch costs .* not less/)
  })
  it('tensors left behind', () => {
    const leaky = sts('leaky', (b) => tf.mean(tf.square(similarities(b))) as tf.Scalar)
    check(leaky, /keeps no tensors/, /leaky: compute\(\) left 3 tensor\(s\) behind/)
  })
})
