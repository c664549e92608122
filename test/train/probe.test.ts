import assert from 'node:assert/strict'
import {test} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {useTestBackend} from '../helpers/env.js'
import {ToyEncoder} from '../helpers/toy-encoder.js'
import {irDataset, makeTrainer, stsDataset} from './fixtures.js'
import {ensureGradients} from '../../src/train/gradients.js'
import {StsObjective, IrObjective} from '../../src/train/objective.js'
import {create as createIrInfoNce} from '../../src/train/losses/ir-infonce.js'
import {create as createMidInfoNce} from '../../src/train/losses/mid-infonce.js'
import {create as createPro} from '../../src/train/losses/pro.js'
import {create as createPearson} from '../../src/train/losses/pearson.js'
import {create as createRankKl} from '../../src/train/losses/rank-kl.js'
import type {IrLoss, StsLoss} from '../../src/train/losses/types.js'
import type {ProbeResult, StepEvent} from '../../src/train/trainer.js'

async function setup(): Promise<void> {
  await useTestBackend()
  await ensureGradients()
}

const STS_WEIGHTS = {'mid-infonce': 1, pro: 0.5, pearson: 2, 'rank-kl': 5}

/** The paper's STS objective as four separate terms, so the trainer can report each component. */
function paperObjectives() {
  const sts = new StsObjective([
    {loss: createMidInfoNce({}) as StsLoss, weight: STS_WEIGHTS['mid-infonce']},
    {loss: createPro({}) as StsLoss, weight: STS_WEIGHTS.pro},
    {loss: createPearson() as StsLoss, weight: STS_WEIGHTS.pearson},
    {loss: createRankKl({}) as StsLoss, weight: STS_WEIGHTS['rank-kl']},
  ])
  const ir = new IrObjective([{loss: createIrInfoNce({positives: 2, negatives: 3, temperature: 0.05}) as IrLoss, weight: 1}])
  return {ir, sts}
}

function checkComponents(result: {loss: Record<string, number>; components: Record<string, Record<string, number>>}): void {
  const parts = result.components.sts
  assert.deepEqual(Object.keys(parts).sort(), Object.keys(STS_WEIGHTS).sort())
  const weighted = Object.entries(STS_WEIGHTS).reduce((a, [name, w]) => a + w * parts[name], 0)
  assert.ok(Math.abs(weighted - result.loss.sts) <= 1e-4 * Math.max(1, Math.abs(result.loss.sts)), `Σ weight·component ${weighted} vs sts ${result.loss.sts}`)
  assert.equal(result.components.ir, undefined, 'a single-term objective reports no components')
}

test('probe loss: the same fixed batches every time (deterministic, no dropout, no tensor leaks)', async () => {
  await setup()
  const encoder = new ToyEncoder(2, 16, 97, 3, 0.3)
  const trainer = makeTrainer({encoder, objectives: paperObjectives(), probe: {batches: 3}})
  const before = tf.memory().numTensors
  const a = await trainer.probe()
  const afterFirst = tf.memory().numTensors
  const b = await trainer.probe()
  assert.equal(tf.memory().numTensors, afterFirst, 'a probe measurement leaves no tensors behind')
  assert.equal(afterFirst, before, 'drawing the probe batches holds no tensors')
  assert.deepEqual(b.loss, a.loss)
  assert.deepEqual(b.components, a.components)
  assert.deepEqual(a.batches, {ir: 3, sts: 3})
  assert.deepEqual(a.rows, {ir: 18, sts: 15})
  checkComponents(a)
  // A second trainer over the same data and seed draws the same probe: same values on the same weights.
  const other = makeTrainer({encoder, objectives: paperObjectives(), probe: {batches: 3}})
  assert.deepEqual((await other.probe()).loss, a.loss)
  // A different probe seed draws other batches.
  const reseeded = makeTrainer({encoder, objectives: paperObjectives(), probe: {batches: 3, seed: 99}})
  assert.notDeepEqual((await reseeded.probe()).loss, a.loss)
  for (const t of [trainer, other, reseeded]) t.dispose()
  encoder.dispose()
})

test('probe loss of both tasks falls when training on the toy data; steps report STS components', async () => {
  await setup()
  const encoder = new ToyEncoder(2, 16, 97, 2)
  const probes: ProbeResult[] = []
  const steps: StepEvent[] = []
  const trainer = makeTrainer({
    encoder,
    objectives: paperObjectives(),
    epochs: 6,
    probe: {batches: 2},
    onEvent: (e) => {
      if (e.type === 'probe') probes.push(e)
      else if (e.type === 'step') steps.push(e)
    },
  })
  const summary = await trainer.run()
  assert.ok(summary.probe, 'summary has probe results')
  const {first, last} = summary.probe
  assert.equal(first.step, 0)
  assert.equal(first.when, 'start')
  assert.equal(last.step, summary.steps)
  // start + one per epoch end (the final epoch end is the last measurement).
  assert.deepEqual(probes.map((p) => p.when), ['start', ...Array(6).fill('epoch')])
  assert.deepEqual(summary.probe.history, probes)
  for (const task of ['ir', 'sts']) assert.ok(last.loss[task] < first.loss[task], `${task}: probe ${first.loss[task]} → ${last.loss[task]}`)
  checkComponents(first)
  checkComponents(last)
  const stsSteps = steps.filter((e) => 'sts' in e.loss)
  assert.ok(stsSteps.length > 0)
  for (const e of stsSteps) {
    const weighted = Object.entries(STS_WEIGHTS).reduce((a, [name, w]) => a + w * e.components.sts[name], 0)
    assert.ok(Math.abs(weighted - e.loss.sts) <= 1e-4 * Math.max(1, Math.abs(e.loss.sts)), `step ${e.step}: ${weighted} vs ${e.loss.sts}`)
  }
  trainer.dispose()
  encoder.dispose()
})

test('probing does not change training: same loss trajectory and no extra tensors per step', async () => {
  await setup()
  const run = async (probe?: {batches: number}) => {
    const encoder = new ToyEncoder(2, 8, 97, 4)
    const counts: number[] = []
    const trainer = makeTrainer({encoder, datasets: [irDataset(24), stsDataset(20)], epochs: 3, probe, checkpoint: undefined, onEvent: (e) => {
      if (e.type === 'step') counts.push(tf.memory().numTensors)
    }})
    const summary = await trainer.run()
    trainer.dispose()
    encoder.dispose()
    return {history: summary.history, counts}
  }
  const plain = await run()
  const probed = await run({batches: 2})
  assert.deepEqual(probed.history, plain.history)
  assert.equal(probed.counts.at(-1), probed.counts[1], 'tensor count is flat across steps with probes at every epoch end')
})
