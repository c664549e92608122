import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {shared, useTestBackend, BUILTINS} from '../helpers/env.js'
import {ToyEncoder} from '../helpers/toy-encoder.js'
import {irDataset, makeTrainer, stsDataset, weightsOf} from './fixtures.js'
import {ensureGradients} from '../../src/train/gradients.js'
import {listCheckpoints} from '../../src/train/checkpoint.js'
import type {TrainEvent} from '../../src/train/trainer.js'

async function setup(): Promise<void> {
  await useTestBackend()
  await ensureGradients()
}

test('GradCache gives the same loss and parameter gradients as the direct computation (dropout off)', async () => {
  await setup()
  const encoder = new ToyEncoder(2, 16, 97, 3)
  const datasets = [irDataset(24)]
  const direct = makeTrainer({encoder, datasets, dropout: false})
  const cached = makeTrainer({encoder, datasets, dropout: false, cacheChunkSize: 4})
  const batch = {parts: [{dataset: 0, rows: [0, 3, 5, 7, 9, 11, 13, 20]}]}
  const a = await direct.gradientsOf(batch)
  const b = await cached.gradientsOf(batch)
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-5 * Math.abs(a.loss), `loss ${a.loss} vs ${b.loss}`)
  assert.deepEqual([...a.grads.keys()].sort(), [...b.grads.keys()].sort())
  let largest = 0
  for (const [name, g] of a.grads) {
    const x = g.dataSync()
    const y = b.grads.get(name)!.dataSync()
    let scale = 0
    for (const v of x) scale = Math.max(scale, Math.abs(v))
    largest = Math.max(largest, scale)
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - y[i]) <= 1e-4 * scale + 1e-7, `${name}[${i}]: ${x[i]} vs ${y[i]}`)
  }
  assert.ok(largest > 1e-3, 'gradients are not trivially zero')
  tf.dispose([...a.grads.values(), ...b.grads.values()])
  direct.dispose()
  cached.dispose()
  encoder.dispose()
})

test('an interrupted and resumed run follows the same loss trajectory, ends with the same weights and keeps the probe history', async () => {
  await setup()
  const root = mkdtempSync(join(tmpdir(), 'codiemb-resume-'))
  try {
    const uninterrupted = new ToyEncoder(2, 16, 97, 8)
    const probe = {batches: 2}
    const full = makeTrainer({encoder: uninterrupted, checkpoint: {dir: join(root, 'full'), everyEpoch: true, everySteps: 0, keepLast: 1}, gradientAccumulation: 2, probe})
    const fullRun = await full.run()
    assert.equal(fullRun.steps, fullRun.totalSteps)
    assert.ok(fullRun.totalSteps >= 8, `steps ${fullRun.totalSteps}`)

    const first = new ToyEncoder(2, 16, 97, 8)
    const interrupted = makeTrainer({encoder: first, checkpoint: {dir: join(root, 'part'), everyEpoch: true, everySteps: 0, keepLast: 2}, gradientAccumulation: 2, stopAfterSteps: 3, probe})
    const part = await interrupted.run()
    assert.equal(part.stoppedEarly, true)
    assert.equal(part.steps, 3)
    const [latest] = listCheckpoints(join(root, 'part')).slice(-1)
    assert.equal(latest.step, 3)

    // A fresh process: new encoder loaded from the checkpoint, a fresh sampler with another seed
    // (its state comes from the checkpoint), the same config otherwise.
    const resumedEncoder = new ToyEncoder(2, 16, 97, 999)
    await resumedEncoder.loadWeights(latest.path)
    const resumed = makeTrainer({encoder: resumedEncoder, checkpoint: {dir: join(root, 'part'), everyEpoch: true, everySteps: 0, keepLast: 2}, gradientAccumulation: 2, samplerSeed: 12345, probe})
    await resumed.resumeFrom(latest.path)
    const rest = await resumed.run()
    assert.equal(rest.steps, fullRun.totalSteps)
    const losses = (h: {loss: Record<string, number>}[]) => h.map((x) => JSON.stringify(x.loss))
    assert.deepEqual(losses(rest.history), losses(fullRun.history))
    assert.deepEqual(await weightsOf(resumedEncoder), await weightsOf(uninterrupted))
    // The resumed run reports the probe from step 0 (carried in the checkpoint), not from the resume
    // point, and every probe of the uninterrupted run appears with the same value (the interrupted run
    // adds one at its interruption checkpoint).
    assert.equal(rest.probe?.first.step, 0)
    assert.deepEqual(rest.probe?.first.loss, fullRun.probe?.first.loss)
    const key = (x: {step: number; loss: Record<string, number>}) => `${x.step}:${JSON.stringify(x.loss)}`
    const resumedProbes = new Set(rest.probe!.history.map(key))
    for (const x of fullRun.probe!.history) assert.ok(resumedProbes.has(key(x)), `probe at step ${x.step} missing or different after resume`)
    assert.equal(rest.probe!.history.filter((x) => x.step === 3).length, 1, 'the probe at the resume point is not taken twice')
    for (const t of [full, interrupted, resumed]) t.dispose()
    for (const e of [uninterrupted, first, resumedEncoder]) e.dispose()
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('checkpoints keep the last K, write atomically, are reported after their step, and a stale partial directory is cleaned up', async () => {
  await setup()
  const root = mkdtempSync(join(tmpdir(), 'codiemb-ckpt-'))
  try {
    const encoder = new ToyEncoder(1, 8, 97, 1)
    const dir = join(root, 'run')
    const events: TrainEvent[] = []
    const trainer = makeTrainer({encoder, datasets: [stsDataset(20)], epochs: 2, checkpoint: {dir, everyEpoch: false, everySteps: 2, keepLast: 2}, onEvent: (e) => events.push(e)})
    const leftover = join(dir, '.checkpoint-1.4242.deadbeef.tmp')
    const {mkdirSync} = await import('node:fs')
    mkdirSync(leftover, {recursive: true})
    const summary = await trainer.run()
    assert.equal(summary.totalSteps, 8)
    assert.deepEqual(listCheckpoints(dir).map((c) => c.step), [6, 8])
    assert.equal(existsSync(leftover), false)
    const files = readdirSync(listCheckpoints(dir)[1].path).sort()
    assert.deepEqual(files, ['model.safetensors', 'optimizer.safetensors', 'toy.json', 'trainer_state.json'])
    // Every checkpoint is reported once complete, after its step's event (keepLast prunes directories, not events).
    assert.deepEqual(
      events.map((e) => (e.type === 'step' || e.type === 'checkpoint' ? `${e.type} ${e.step}` : e.type)),
      [1, 2, 3, 4, 5, 6, 7, 8].flatMap((step) => (step % 2 ? [`step ${step}`] : [`step ${step}`, `checkpoint ${step}`])),
    )
    const reported = events.filter((e) => e.type === 'checkpoint').slice(-2)
    assert.deepEqual(reported, listCheckpoints(dir).map((c) => ({type: 'checkpoint', path: c.path, step: c.step})))
    trainer.dispose()
    encoder.dispose()
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('a GradCache chunk size resolved from auto is recorded in checkpoints, and a resume with another one is refused', async () => {
  await setup()
  const root = mkdtempSync(join(tmpdir(), 'codiemb-ckpt-'))
  try {
    const encoder = new ToyEncoder(1, 8, 97, 1)
    const datasets = [irDataset(24)]
    assert.throws(() => makeTrainer({encoder, datasets, cacheChunkSize: 'auto'}), /cache\.chunkSize is "auto": resolve it first/)
    const dir = join(root, 'run')
    const first = makeTrainer({encoder, datasets, cacheChunkSize: 'auto', gradCacheChunkSize: 4, stopAfterSteps: 1, checkpoint: {dir, everyEpoch: false, everySteps: 0, keepLast: 0}})
    await first.run()
    const [checkpoint] = listCheckpoints(dir)
    const {readTrainerState} = await import('../../src/train/checkpoint.js')
    assert.equal(readTrainerState(checkpoint.path).gradCacheChunkSize, 4)
    const other = makeTrainer({encoder, datasets, cacheChunkSize: 'auto', gradCacheChunkSize: 6})
    await assert.rejects(other.resumeFrom(checkpoint.path), /trained with GradCache chunk size 4, this run would use 6 \(chunks decide dropout seeds\)/)
    const same = makeTrainer({encoder, datasets, cacheChunkSize: 'auto', gradCacheChunkSize: 4})
    assert.equal((await same.resumeFrom(checkpoint.path)).step, 1)
    for (const t of [first, other, same]) t.dispose()
    encoder.dispose()
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('no tensor leaks: tf.memory().numTensors is the same after step 10 and step 100', async () => {
  await setup()
  const encoder = new ToyEncoder(2, 8, 97, 4)
  const counts = new Map<number, number>()
  const trainer = makeTrainer({
    encoder,
    datasets: [irDataset(24), stsDataset(20)],
    epochs: 13,
    onEvent: (e) => {
      if (e.type === 'step') counts.set(e.step, tf.memory().numTensors)
    },
  })
  const summary = await trainer.run()
  assert.ok(summary.steps >= 100, `ran ${summary.steps} steps`)
  assert.equal(counts.get(100), counts.get(10))
  trainer.dispose()
  encoder.dispose()
})

test('training lowers the loss of both tasks on the toy data (probe loss on fixed batches)', async () => {
  await setup()
  const encoder = new ToyEncoder(2, 16, 97, 2)
  // Per-step losses compare different batches (and mid-infonce only has anchors in some): the
  // probe measures the same batches without dropout before and after.
  const trainer = makeTrainer({encoder, epochs: 6, probe: {batches: 3}})
  const summary = await trainer.run()
  const {first, last} = summary.probe!
  for (const task of ['ir', 'sts']) assert.ok(last.loss[task] < 0.9 * first.loss[task], `${task}: ${first.loss[task]} → ${last.loss[task]}`)
  trainer.dispose()
  encoder.dispose()
})

test('GradCache equivalence with the real BERT encoder (fixture bert-tiny): token batches split into chunks correctly', async (t) => {
  const dir = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!dir) return
  await setup()
  const {loadEncoder} = await import('../../src/model/encoder.js')
  const {Trainer} = await import('../../src/train/trainer.js')
  const {create: createIrInfoNce} = await import('../../src/train/losses/ir-infonce.js')
  const {create: createDynamic} = await import('../../src/train/samplers/dynamic.js')
  const {IrObjective} = await import('../../src/train/objective.js')
  const {PAPER_INSTRUCTIONS} = await import('../../src/train/data.js')
  const encoder = await loadEncoder(dir, {registry: BUILTINS})
  const datasets = [irDataset(12)]
  const make = (cache?: number) =>
    new Trainer({
      encoder,
      datasets,
      sampler: createDynamic([{name: 'toy-ir', task: 'ir', size: 12}], {batchSizes: {ir: 6}}, 1),
      objectives: {ir: new IrObjective([{loss: createIrInfoNce({positives: 2, negatives: 2, temperature: 0.05, ...(cache ? {cache: {chunkSize: cache}} : {})}) as never, weight: 1}])},
      optimizer: {learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, maxGradNorm: 0},
      warmupRatio: 0,
      epochs: 1,
      gradientAccumulation: 1,
      seed: 1,
      maxLength: {query: 24, passage: 24, sts: 24},
      instructions: PAPER_INSTRUCTIONS,
      dropout: false,
      prefetch: 1,
      settings: 'x',
    })
  const batch = {parts: [{dataset: 0, rows: [0, 1, 2, 3, 4, 5]}]}
  const direct = make()
  const cached = make(4)
  const a = await direct.gradientsOf(batch)
  const b = await cached.gradientsOf(batch)
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-5 * Math.abs(a.loss), `loss ${a.loss} vs ${b.loss}`)
  for (const [name, g] of a.grads) {
    const x = g.dataSync()
    const y = b.grads.get(name)!.dataSync()
    let scale = 1e-8
    for (const v of x) scale = Math.max(scale, Math.abs(v))
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - y[i]) <= 1e-3 * scale + 1e-7, `${name}[${i}]: ${x[i]} vs ${y[i]}`)
  }
  tf.dispose([...a.grads.values(), ...b.grads.values()])
  direct.dispose()
  cached.dispose()
  encoder.dispose()
})

test('activation checkpointing through the trainer (real BERT, dropout on): the same loss and gradients, directly and with GradCache', async (t) => {
  const dir = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!dir) return
  await setup()
  const {loadEncoder} = await import('../../src/model/encoder.js')
  const {Trainer} = await import('../../src/train/trainer.js')
  const {create: createIrInfoNce} = await import('../../src/train/losses/ir-infonce.js')
  const {create: createDynamic} = await import('../../src/train/samplers/dynamic.js')
  const {IrObjective} = await import('../../src/train/objective.js')
  const {PAPER_INSTRUCTIONS} = await import('../../src/train/data.js')
  const encoder = await loadEncoder(dir, {registry: BUILTINS})
  const datasets = [irDataset(12)]
  const make = (gradientCheckpointing: boolean, cache?: number) =>
    new Trainer({
      encoder,
      datasets,
      sampler: createDynamic([{name: 'toy-ir', task: 'ir', size: 12}], {batchSizes: {ir: 4}}, 1),
      objectives: {ir: new IrObjective([{loss: createIrInfoNce({positives: 2, negatives: 2, temperature: 0.05, ...(cache ? {cache: {chunkSize: cache}} : {})}) as never, weight: 1}])},
      optimizer: {learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, maxGradNorm: 0},
      warmupRatio: 0,
      epochs: 1,
      gradientAccumulation: 1,
      seed: 1,
      maxLength: {query: 24, passage: 24, sts: 24},
      instructions: PAPER_INSTRUCTIONS,
      dropout: true,
      gradientCheckpointing,
      prefetch: 1,
      settings: 'x',
    })
  const batch = {parts: [{dataset: 0, rows: [0, 1, 2, 3]}]}
  for (const cache of [undefined, 5]) {
    const plain = make(false, cache)
    const checkpointed = make(true, cache)
    const a = await plain.gradientsOf(batch)
    const b = await checkpointed.gradientsOf(batch)
    const what = cache ? `GradCache chunk ${cache}` : 'direct'
    assert.ok(Math.abs(a.loss - b.loss) <= 1e-5 * Math.abs(a.loss), `${what}: loss ${a.loss} vs ${b.loss}`)
    assert.deepEqual([...b.grads.keys()].sort(), [...a.grads.keys()].sort())
    for (const [name, g] of a.grads) {
      const x = g.dataSync()
      const y = b.grads.get(name)!.dataSync()
      let scale = 1e-8
      for (const v of x) scale = Math.max(scale, Math.abs(v))
      for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i] - y[i]) <= 1e-4 * scale + 1e-7, `${what}: ${name}[${i}]: ${x[i]} vs ${y[i]}`)
    }
    tf.dispose([...a.grads.values(), ...b.grads.values()])
    plain.dispose()
    checkpointed.dispose()
  }
  encoder.dispose()
})
