/**
 * Every loss against the float64 reference values and gradients in
 * ../shared/fixtures/losses-and-metrics.json (checked against the CoDiEmb release code).
 */
import {readFileSync} from 'node:fs'
import assert from 'node:assert/strict'
import {test} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {shared, useTestBackend} from '../../helpers/env.js'
import {ensureGradients} from '../../../src/train/gradients.js'
import {irInfoNce} from '../../../src/train/losses/ir-infonce.js'
import {pearsonLoss} from '../../../src/train/losses/pearson.js'
import {rankKlLoss} from '../../../src/train/losses/rank-kl.js'
import {proLoss} from '../../../src/train/losses/pro.js'
import {cosentLoss} from '../../../src/train/losses/cosent.js'
import {midInfoNceLoss} from '../../../src/train/losses/mid-infonce.js'
import {create as createCodiembSts} from '../../../src/train/losses/codiemb-sts.js'

interface LossCase {
  loss: string
  params: Record<string, any>
  inputs: Record<string, number[] | number[][]>
  expected: number
  grads: Record<string, number[] | number[][]>
}

const RELATIVE = 1e-4

function assertClose(actual: ArrayLike<number>, expected: number[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`)
  // 1e-4 relative to each value, plus 1e-5 absolute: entries that are exactly 0 in float64 (e.g.
  // the Pearson gradient of a 2-pair batch) come out as float32 rounding noise.
  for (let i = 0; i < expected.length; i++) {
    const tolerance = RELATIVE * Math.abs(expected[i]) + 1e-5
    assert.ok(Number.isFinite(actual[i]) && Math.abs(actual[i] - expected[i]) <= tolerance, `${what}[${i}]: got ${actual[i]}, expected ${expected[i]} (±${tolerance})`)
  }
}

/** The loss as a function of the fixture's differentiable inputs, in the fixture's order. */
function lossFunction(c: LossCase): {names: string[]; f: (...xs: tf.Tensor[]) => tf.Scalar} {
  const y = c.inputs.y as number[] | undefined
  const p = c.params
  switch (c.loss) {
    case 'ir_multi_positive_infonce':
      return {names: ['q', 'p'], f: (q, ps) => irInfoNce(q as tf.Tensor2D, ps as tf.Tensor2D, p.positives, p.negatives, p.temperature)}
    case 'pearson':
      return {names: ['s'], f: (s) => pearsonLoss(s as tf.Tensor1D, y!)}
    case 'rank_kl':
      return {names: ['s'], f: (s) => rankKlLoss(s as tf.Tensor1D, y!, p.temperature)}
    case 'pro':
      return {names: ['s'], f: (s) => proLoss(s as tf.Tensor1D, y!, p.temperature)}
    case 'cosent':
      return {names: ['s'], f: (s) => cosentLoss(s as tf.Tensor1D, y!, p.scale)}
    case 'mid_infonce':
      return {names: ['q', 'p'], f: (q, ps) => midInfoNceLoss(q as tf.Tensor2D, ps as tf.Tensor2D, y!, p.temperature, p.threshold)}
    case 'sts_total': {
      const w = p.weights
      const loss = createCodiembSts({
        weights: {midInfonce: w.mid_infonce, pro: w.pro, pearson: w.pearson, rankKl: w.rank_kl},
        temperature: p.temperature,
        rankTemperature: p.rank_temperature,
      })
      return {
        names: ['q', 'p', 'q_mid', 'p_mid'],
        f: (q, ps, qm, pm) =>
          loss.compute({left: q as tf.Tensor2D, right: ps as tf.Tensor2D, leftMiddle: qm as tf.Tensor2D, rightMiddle: pm as tf.Tensor2D, labels: y!}),
      }
    }
    default:
      throw new Error(`fixture has a loss this test does not know: ${c.loss}`)
  }
}

test('every loss matches the fixture values and gradients (1e-4 relative)', async (t) => {
  const file = shared(t, 'fixtures', 'losses-and-metrics.json')
  if (!file) return
  await useTestBackend()
  await ensureGradients()
  const cases = (JSON.parse(readFileSync(file, 'utf8')) as {losses: LossCase[]}).losses
  assert.ok(cases.length >= 50)
  const seen = new Set<string>()
  const before = tf.memory().numTensors
  cases.forEach((c, index) => {
    const {names, f} = lossFunction(c)
    seen.add(c.loss)
    const inputs = names.map((n) => tf.tensor(c.inputs[n] as number[]))
    const value = tf.tidy(() => f(...inputs))
    assertClose([value.dataSync()[0]], [c.expected], `case ${index} ${c.loss} value`)
    const gradients = tf.grads((...xs: tf.Tensor[]) => f(...xs))(inputs)
    names.forEach((n, k) => assertClose(gradients[k].dataSync(), (c.grads[n] as number[] | number[][]).flat(), `case ${index} ${c.loss} d/d${n}`))
    tf.dispose([value, ...inputs, ...gradients])
  })
  assert.deepEqual([...seen].sort(), ['cosent', 'ir_multi_positive_infonce', 'mid_infonce', 'pearson', 'pro', 'rank_kl', 'sts_total'])
  assert.equal(tf.memory().numTensors, before, 'losses leaked tensors')
})
