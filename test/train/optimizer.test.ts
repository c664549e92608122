import assert from 'node:assert/strict'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {useTestBackend} from '../helpers/env.js'
import {AdamW, clipByGlobalNorm, decays, learningRateAt} from '../../src/train/optimizer.js'
import {ensureGradients} from '../../src/train/gradients.js'
import {ArrowRecordWriter} from '../../src/io/arrow-records.js'
import {batchTexts, loadTrainingDataset, PAPER_INSTRUCTIONS} from '../../src/train/data.js'
import {Rng} from '../../src/core/rng.js'

test('linear warm-up then linear decay to zero', () => {
  const s = {learningRate: 1e-3, warmupSteps: 4, totalSteps: 20}
  assert.deepEqual([0, 1, 2, 3].map((k) => learningRateAt(k, s)), [2.5e-4, 5e-4, 7.5e-4, 1e-3])
  assert.equal(learningRateAt(4, s), 1e-3)
  assert.ok(Math.abs(learningRateAt(12, s) - 5e-4) < 1e-12)
  assert.equal(learningRateAt(20, s), 0)
  assert.equal(learningRateAt(0, {learningRate: 1, warmupSteps: 0, totalSteps: 10}), 1)
})

test('AdamW matches a hand-computed update (bias correction, decoupled weight decay, no decay on biases)', async () => {
  await useTestBackend()
  const w = tf.variable(tf.tensor1d([1, -2]), true, 'opt-test.weight')
  const b = tf.variable(tf.tensor1d([0.5]), true, 'opt-test.bias')
  const opt = new AdamW(new Map([['dense.weight', w], ['dense.bias', b]]), {learningRate: 0, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1})
  const gw = tf.tensor1d([0.5, 0.25])
  const gb = tf.tensor1d([-1])
  opt.apply(new Map([['dense.weight', gw], ['dense.bias', gb]]), 0.01)
  // Step 1: m̂ = g, v̂ = g², update = g/(|g|+ε) ≈ sign(g); weight decay 0.01·0.1·θ on the weight only.
  const expectW = [1 - 0.01 * 1 - 0.01 * 0.1 * 1, -2 - 0.01 * 1 - 0.01 * 0.1 * -2]
  Array.from(w.dataSync()).forEach((v, i) => assert.ok(Math.abs(v - expectW[i]) < 1e-6, `w[${i}] ${v} vs ${expectW[i]}`))
  assert.ok(Math.abs(b.dataSync()[0] - (0.5 + 0.01)) < 1e-6)
  opt.apply(new Map([['dense.weight', gw], ['dense.bias', gb]]), 0.01)
  assert.equal(opt.step, 2)
  const state = await opt.exportState()
  assert.ok(Math.abs(state.tensors.find((t) => t.name === 'm.dense.weight')!.data[0] - (0.1 * 0.5 * 0.9 + 0.1 * 0.5)) < 1e-7)
  assert.equal(decays('encoder.layer.0.attention.output.LayerNorm.weight'), false)
  assert.equal(decays('encoder.layer.0.attention.output.dense.bias'), false)
  assert.equal(decays('encoder.layer.0.attention.output.dense.weight'), true)
  opt.dispose()
  tf.dispose([w, b, gw, gb])
})

test('clipByGlobalNorm scales all gradients together', async () => {
  await useTestBackend()
  const grads = new Map<string, tf.Tensor>([['a', tf.tensor1d([3, 0])], ['b', tf.tensor1d([4])]])
  const norm = clipByGlobalNorm(grads, 1)
  assert.ok(Math.abs(norm - 5) < 1e-6)
  assert.ok(Math.abs(grads.get('a')!.dataSync()[0] - 0.6) < 1e-5)
  assert.ok(Math.abs(grads.get('b')!.dataSync()[0] - 0.8) < 1e-5)
  tf.dispose([...grads.values()])
})

test('the embedding (gather) gradient equals the dense one-hot reference and handles repeated ids', async () => {
  await useTestBackend()
  await ensureGradients()
  const table = tf.randomNormal([7, 3], 0, 1, 'float32', 1)
  const ids = tf.tensor1d([2, 5, 2, 0, 6, 2], 'int32')
  const upstream = tf.randomNormal([6, 3], 0, 1, 'float32', 2)
  const viaGather = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), upstream)))(table)
  const viaOneHot = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.matMul(tf.cast(tf.oneHot(ids, 7), 'float32'), t as tf.Tensor2D), upstream)))(table)
  const a = viaGather.dataSync()
  const b = viaOneHot.dataSync()
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5, `[${i}] ${a[i]} vs ${b[i]}`)
  tf.dispose([table, ids, upstream, viaGather, viaOneHot])
})

test('training files: IR rows without enough negatives are dropped and counted; instructions go on queries and STS texts only', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-data-'))
  try {
    const ir = new ArrowRecordWriter(join(dir, 'ir.arrow'), 'ir-example', {metadata: {'codiemb.dataset': 'tiny-ir', 'codiemb.task': 'ir'}})
    ir.write({id: 'a', query: 'q1', instruction: 'find it', positives: ['p1'], negatives: ['n1', 'n2'], positive_scores: null, negative_scores: null})
    ir.write({id: 'b', query: 'q2', instruction: 'find it', positives: ['p2'], negatives: ['n3'], positive_scores: null, negative_scores: null})
    ir.write({id: 'c', query: 'q3', instruction: '', positives: ['p3'], negatives: [], positive_scores: null, negative_scores: null})
    await ir.finish()
    const sts = new ArrowRecordWriter(join(dir, 'sts.arrow'), 'sts-pair', {metadata: {'codiemb.dataset': 'tiny-sts', 'codiemb.task': 'sts'}})
    sts.write({id: 's', text1: 'x', text2: 'y', score: 0.8, raw_score: 4, instruction: 'rate'})
    await sts.finish()
    const irSet = await loadTrainingDataset({path: join(dir, 'ir.arrow')}, 2)
    assert.equal(irSet.name, 'tiny-ir')
    assert.equal(irSet.rows.length, 1)
    assert.equal(irSet.dropped, 2)
    const stsSet = await loadTrainingDataset({path: join(dir, 'sts.arrow')}, 2)
    const datasets = [irSet, stsSet]
    const irTexts = await batchTexts(datasets, {dataset: 0, rows: [0]}, {positives: 2, negatives: 2}, PAPER_INSTRUCTIONS, new Rng(1))
    assert.equal(irTexts.task, 'ir')
    if (irTexts.task === 'ir') {
      assert.deepEqual(irTexts.queries, ['Instruction: find it Query: q1'])
      assert.deepEqual(irTexts.queryPrefixes, ['Instruction: find it Query: '])
      assert.deepEqual(irTexts.passages.slice(0, 2), ['p1', 'p1'])
      assert.deepEqual([...irTexts.passages.slice(2)].sort(), ['n1', 'n2'])
    }
    const stsTexts = await batchTexts(datasets, {dataset: 1, rows: [0]}, {positives: 2, negatives: 2}, PAPER_INSTRUCTIONS, new Rng(1))
    if (stsTexts.task === 'sts') {
      assert.deepEqual([stsTexts.texts1[0], stsTexts.texts2[0]], ['Instruction: rate Query: x', 'Instruction: rate Query: y'])
      assert.ok(Math.abs(stsTexts.labels[0] - 0.8) < 1e-6)
    }
    await assert.rejects(loadTrainingDataset({path: join(dir, 'missing.arrow')}, 0), /missing\.arrow: training file not found/)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
