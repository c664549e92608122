/**
 * Non-finite losses, gradients and weights in training (src/train/finite.ts, trainer.ts): a batch
 * whose loss or gradient is NaN stops the run before anything of its step is applied, naming the
 * step, task, dataset and rows and the last good checkpoint, which is kept; with onNonFinite
 * skip-batch the batch is left out and reported; weights an update made non-finite always stop the
 * run and are never checkpointed. The poisoned rows come from a test loss that turns one marked
 * label into NaN (or into an infinite gradient with a finite loss).
 */
import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {TEST_BACKEND, useTestBackend} from '../helpers/env.js'
import {ToyEncoder} from '../helpers/toy-encoder.js'
import {makeTrainer, stsDataset, weightsOf} from './fixtures.js'
import {ensureGradients} from '../../src/train/gradients.js'
import {listCheckpoints} from '../../src/train/checkpoint.js'
import {firstNonFinite, rowList} from '../../src/train/finite.js'
import {StsObjective} from '../../src/train/objective.js'
import {create as createDynamic} from '../../src/train/samplers/dynamic.js'
import type {StsLoss} from '../../src/train/losses/types.js'
import type {TrainEvent} from '../../src/train/trainer.js'

/** Label −1 makes the loss NaN; label 2 leaves it finite but makes its gradient NaN (√ at 0 behind a ReLU). Otherwise a squared error. */
const poisonLoss: StsLoss = {
  task: 'sts',
  name: 'poison',
  needsMiddleLayer: false,
  compute({left, right, labels}) {
    const marks = Array.from(labels)
    const sim = tf.sum(tf.mul(left, right), 1)
    let loss: tf.Tensor = tf.mean(tf.square(tf.sub(sim, tf.tensor1d(marks.map((l) => Math.min(Math.max(l, 0), 1))))))
    if (marks.includes(-1)) loss = tf.mul(loss, NaN)
    if (marks.includes(2)) loss = tf.add(loss, tf.sum(tf.sqrt(tf.relu(tf.sub(sim, 5)))))
    return loss as tf.Scalar
  },
}

/** 20 toy pairs with `label` at the first row of the sampler's third batch (so steps 1 and 2 are clean). */
function poisoned(label: number): {dataset: ReturnType<typeof stsDataset>; row: number} {
  const dataset = stsDataset(20)
  const plan = createDynamic([{name: dataset.name, task: 'sts', size: 20}], {batchSizes: {ir: 6, sts: 5}}, 11).epochPlan()
  const row = plan[2]!.parts[0]!.rows[0]!
  dataset.rows[row] = {...dataset.rows[row]!, score: label}
  return {dataset, row}
}

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  await useTestBackend()
  await ensureGradients()
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-finite-'))
  try {
    await f(dir)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

describe('firstNonFinite', () => {
  it('names the first tensor holding NaN or ±Infinity, passes huge finite values, and leaks nothing', async () => {
    await useTestBackend()
    const tensors = new Map<string, tf.Tensor>([
      ['big', tf.tensor1d([3e38, -3e38, 0])],
      ['inf', tf.tensor2d([[1, -Infinity]])],
      ['nan', tf.tensor1d([NaN])],
    ])
    const before = tf.memory().numTensors
    assert.equal(firstNonFinite(tensors), 'inf')
    assert.equal(firstNonFinite(new Map([['big', tensors.get('big')!]])), undefined)
    assert.equal(firstNonFinite(new Map()), undefined)
    assert.equal(tf.memory().numTensors, before)
    tf.dispose([...tensors.values()])
    assert.equal(rowList(Array.from({length: 25}, (_, i) => i)), `${Array.from({length: 20}, (_, i) => i).join(', ')}, … (25 rows)`)
  })
})

describe('onNonFinite', () => {
  it('stop: a NaN loss ends the run at its step naming task, dataset and rows; the last good checkpoint is named, kept, and holds the weights in memory', async () => {
    await withDir(async (dir) => {
      const {dataset, row} = poisoned(-1)
      const encoder = new ToyEncoder(1, 8, 97, 3)
      const ckpt = join(dir, 'ckpt')
      const trainer = makeTrainer({encoder, datasets: [dataset], objectives: {sts: new StsObjective([{loss: poisonLoss, weight: 1}])}, checkpoint: {dir: ckpt, everyEpoch: true, everySteps: 1, keepLast: 0}})
      const error = await trainer.run().then(
        () => assert.fail('training went on past a NaN loss'),
        (e: Error) => e,
      )
      assert.equal(error.name, 'NonFiniteError')
      assert.equal((error as Error & {exitCode: number}).exitCode, 1)
      const m = /^non-finite loss \(NaN\) at step 3 of 8 \(epoch 1, batch 2 of the epoch\): task sts, dataset toy-sts \(\(memory\)\), file rows ([\d, ]+) \(numbered from 0\)\. Training stopped; nothing of this step was applied\. The last good checkpoint is (\S+) \(step 2\); resume from it with --resume/.exec(error.message)
      assert.ok(m, error.message)
      assert.ok(m[1]!.split(', ').map(Number).includes(row), `row ${row} in ${m[1]}`)
      assert.equal(m[2], join(ckpt, 'checkpoint-2'))
      assert.deepEqual(listCheckpoints(ckpt).map((c) => c.step), [1, 2], 'no checkpoint of the failed step')
      const saved = new ToyEncoder(1, 8, 97, 99)
      await saved.loadWeights(m[2]!)
      assert.deepEqual(await weightsOf(saved), await weightsOf(encoder), 'nothing of step 3 was applied')
      for (const e of [saved, encoder]) e.dispose()
      trainer.dispose()
    })
  })

  it('stop: a finite loss with a NaN gradient names the gradient tensor; with no checkpoint yet, the message says nothing was saved', async () => {
    await withDir(async () => {
      const {dataset} = poisoned(2)
      const encoder = new ToyEncoder(1, 8, 97, 3)
      const trainer = makeTrainer({encoder, datasets: [dataset], objectives: {sts: new StsObjective([{loss: poisonLoss, weight: 1}])}})
      await assert.rejects(trainer.run(), {
        name: 'NonFiniteError',
        message: /^non-finite gradient of (embeddings|layer\.0)\.weight at step 3 of 8 .* No checkpoint was written before this step, so nothing was saved; set train\.onNonFinite: skip-batch/,
      })
      trainer.dispose()
      encoder.dispose()
    })
  })

  it('skip-batch: the poisoned batch is left out of its step once per epoch, reported as a warning event; training completes with finite weights', async () => {
    await withDir(async () => {
      const {dataset, row} = poisoned(-1)
      const encoder = new ToyEncoder(1, 8, 97, 3)
      const events: TrainEvent[] = []
      const trainer = makeTrainer({
        encoder,
        datasets: [dataset],
        objectives: {sts: new StsObjective([{loss: poisonLoss, weight: 1}])},
        onNonFinite: 'skip-batch',
        onEvent: (e) => events.push(e),
      })
      const summary = await trainer.run()
      assert.equal(summary.steps, 8)
      const warnings = events.filter((e) => e.type === 'warning')
      assert.equal(summary.skippedBatches, 2, 'the row is in one batch per epoch, two epochs')
      assert.equal(warnings.length, 2)
      for (const w of warnings) {
        assert.equal(w.code, 'skipped-batch')
        assert.equal(w.task, 'sts')
        assert.equal(w.dataset, 'toy-sts')
        assert.ok(w.rows!.includes(row))
        assert.match(w.message, /^non-finite loss \(NaN\) at step \d+ of 8 .*; the batch was skipped \(onNonFinite: skip-batch\)$/)
      }
      assert.equal(warnings[0]!.step, 3)
      // A step whose only batch was skipped applies no update and reports no loss.
      assert.deepEqual(events.find((e) => e.type === 'step' && e.step === 3), {...events.find((e) => e.type === 'step' && e.step === 3), loss: {}, gradNorm: 0})
      assert.equal(firstNonFinite(encoder.variables), undefined)
      trainer.dispose()
      encoder.dispose()
    })
  })

  it('skip-batch with gradient accumulation: the other batches of the step still count', async () => {
    await withDir(async () => {
      const {dataset} = poisoned(-1)
      const encoder = new ToyEncoder(1, 8, 97, 3)
      const steps: TrainEvent[] = []
      const trainer = makeTrainer({
        encoder,
        datasets: [dataset],
        gradientAccumulation: 2,
        objectives: {sts: new StsObjective([{loss: poisonLoss, weight: 1}])},
        onNonFinite: 'skip-batch',
        onEvent: (e) => e.type === 'step' && steps.push(e),
      })
      const before = await weightsOf(encoder)
      const summary = await trainer.run()
      assert.equal(summary.skippedBatches, 2)
      const second = steps.find((e) => e.type === 'step' && e.step === 2)
      assert.ok(second?.type === 'step' && Number.isFinite(second.loss.sts) && second.gradNorm > 0, 'step 2 kept batch 3 of its two')
      assert.notDeepEqual(await weightsOf(encoder), before)
      trainer.dispose()
      encoder.dispose()
    })
  })

  // Adam moves a weight by about the learning rate, so only a rate beyond float32 overflows a weight in one
  // step; the torch kernel refuses such a rate itself ("cannot be converted to type float without overflow").
  const skipTorch = TEST_BACKEND === 'torch' ? 'the torch AdamW kernel refuses a learning rate beyond float32 before the weights overflow' : false
  it('weights an update made non-finite stop the run even with skip-batch, and are never checkpointed', {skip: skipTorch}, async () => {
    await withDir(async (dir) => {
      const encoder = new ToyEncoder(1, 8, 97, 3)
      const ckpt = join(dir, 'ckpt')
      const trainer = makeTrainer({
        encoder,
        datasets: [stsDataset(20)],
        onNonFinite: 'skip-batch',
        optimizer: {learningRate: 1e39, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, maxGradNorm: 1},
        warmupRatio: 0,
        checkpoint: {dir: ckpt, everyEpoch: true, everySteps: 1, keepLast: 0},
      })
      await assert.rejects(trainer.run(), {
        name: 'NonFiniteError',
        message: /^step 1 of 8 made weight (embeddings|layer\.0)\.weight non-finite \(gradient norm [\d.e+-]+ before clipping; is the learning rate 1e\+39 too high\?\); training stopped and no checkpoint was written from these weights\. No checkpoint was written before this step/,
      })
      assert.equal(existsSync(join(ckpt, 'checkpoint-1')), false)
      trainer.dispose()
      encoder.dispose()
    })
  })
})
