/**
 * Resuming trusts nothing (src/train/resume.ts, checkpoint.ts): trainer_state.json is read and
 * checked against its schema, the plan, the settings fingerprint, the seed, the sampler and the data;
 * the optimizer state against the model. Each refusal is a CheckpointError (exit code 2) naming the
 * file; a valid checkpoint passes every check.
 */
import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {useTestBackend} from '../helpers/env.js'
import {ToyEncoder} from '../helpers/toy-encoder.js'
import {makeTrainer, stsDataset} from './fixtures.js'
import {ensureGradients} from '../../src/train/gradients.js'
import {OPTIMIZER_FILE, TRAINER_STATE_FILE, listCheckpoints, readOptimizerState, readTrainerState, type TrainerState} from '../../src/train/checkpoint.js'
import {checkOptimizerState, checkResumeState, settingsDifferences, type ResumeExpectations} from '../../src/train/resume.js'
import {hashSettings} from '../../src/train/setup.js'
import {create as createDynamic} from '../../src/train/samplers/dynamic.js'
import {writeSafetensors} from '../../src/io/safetensors-stream.js'

let root: string
/** A real checkpoint after step 3 of 8 (one STS dataset of 20 rows, batches of 5, 2 epochs). */
let checkpoint: string
let state: TrainerState
const data = [{name: 'toy-sts', rows: 20}]

/** What the run that wrote `checkpoint` expects (as a fresh run of the same configuration computes it). */
function expectations(over: Partial<ResumeExpectations> = {}): ResumeExpectations {
  return {totalSteps: 8, stepsPerEpoch: 4, batchesPerEpoch: 4, gradientAccumulation: 1, epochs: 2, seed: 5, settings: 'toy', data, ...over}
}

/** `checkpoint` with trainer_state.json replaced by `edit(state)`, in a new directory. */
function edited(name: string, edit: (s: TrainerState) => unknown): string {
  const dir = join(root, name)
  mkdirSync(dir, {recursive: true})
  writeFileSync(join(dir, TRAINER_STATE_FILE), JSON.stringify(edit(structuredClone(state))))
  return dir
}

const refusal = (dir: string, message: string | RegExp) => ({name: 'CheckpointError', message: typeof message === 'string' ? `${join(dir, TRAINER_STATE_FILE)}: ${message}` : message})

before(async () => {
  await useTestBackend()
  await ensureGradients()
  root = mkdtempSync(join(tmpdir(), 'codiemb-resume-check-'))
  const encoder = new ToyEncoder(1, 8, 97, 3)
  const trainer = makeTrainer({encoder, datasets: [stsDataset(20)], stopAfterSteps: 3, checkpoint: {dir: join(root, 'run'), everyEpoch: true, everySteps: 0, keepLast: 0}})
  await trainer.run()
  checkpoint = listCheckpoints(join(root, 'run')).at(-1)!.path
  state = readTrainerState(checkpoint)
  trainer.dispose()
  encoder.dispose()
})

after(() => rmSync(root, {recursive: true, force: true}))

describe('readTrainerState', () => {
  it('reads what the trainer wrote: step, plan, sampler position and the data it trained on', () => {
    assert.equal(state.step, 3)
    assert.equal(state.totalSteps, 8)
    assert.deepEqual({epoch: state.sampler.epoch, position: state.sampler.position}, {epoch: 0, position: 3})
    assert.deepEqual(state.data, data)
    assert.doesNotThrow(() => checkResumeState(state, checkpoint, expectations()))
  })

  it('names a missing directory, a folder of checkpoints (with the newest to use) and a directory that is not a checkpoint', () => {
    assert.throws(() => readTrainerState(join(root, 'nope')), {name: 'CheckpointError', message: `${join(root, 'nope')}: no such checkpoint directory`})
    assert.throws(() => readTrainerState(join(root, 'run')), {name: 'CheckpointError', message: `${join(root, 'run')} is a folder of checkpoints, not one checkpoint; resume from its newest with --resume ${checkpoint}`})
    const plain = join(root, 'plain')
    mkdirSync(plain, {recursive: true})
    assert.throws(() => readTrainerState(plain), {name: 'CheckpointError', message: `${plain}: not a training checkpoint (no trainer_state.json); expected a checkpoint-<step> directory written by \`codiemb train\``})
  })

  it('a truncated file is an error naming it, not a bare JSON parse error', () => {
    const dir = join(root, 'truncated')
    mkdirSync(dir, {recursive: true})
    const text = readFileSync(join(checkpoint, TRAINER_STATE_FILE), 'utf8')
    writeFileSync(join(dir, TRAINER_STATE_FILE), text.slice(0, Math.floor(text.length / 2)))
    assert.throws(() => readTrainerState(dir), {name: 'CheckpointError', message: new RegExp(`^${join(dir, TRAINER_STATE_FILE).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not valid JSON \\(.+\\); the checkpoint is damaged$`)})
  })

  it('values of the wrong kind are listed with their JSON pointers', () => {
    const dir = edited('types', (s) => ({...s, step: '3', sampler: {epoch: -1, position: 0}}))
    assert.throws(() => readTrainerState(dir), {
      name: 'CheckpointError',
      message: `invalid trainer state ${join(dir, TRAINER_STATE_FILE)} (data-schemas/trainer-state.schema.json) (3 problems):\n  /step: expected integer >= 0, got "3"\n  /sampler/epochRng: required, missing\n  /sampler/epoch: expected integer >= 0, got -1`,
    })
  })
})

describe('checkResumeState', () => {
  const check = (dir: string, over: Partial<ResumeExpectations> = {}) => () => checkResumeState(readTrainerState(dir), dir, expectations(over))

  it('refuses a step beyond the plan ("trained 999/8 steps")', () => {
    const dir = edited('step999', (s) => ({...s, step: 999}))
    assert.throws(check(dir), refusal(dir, 'step 999 is beyond the 8 steps of the plan'))
  })

  it('refuses a step within the plan that the sampler position does not imply', () => {
    const dir = edited('step4', (s) => ({...s, step: 4}))
    assert.throws(check(dir), refusal(dir, 'step 4 does not match its sampler position (epoch 0, batch 3 of 4), which implies step 3 (gradient accumulation 1)'))
    const outside = edited('epoch9', (s) => ({...s, sampler: {...s.sampler, epoch: 9}}))
    assert.throws(check(outside), refusal(outside, "its sampler position (epoch 9, batch 3 of 4) lies outside the plan's 2 epochs of 4 batches"))
  })

  it('refuses other settings, naming what differs; refuses settings edited away from their fingerprint', () => {
    const mine = {learningRate: 0.001, epochs: 2, seed: 5}
    const theirs = {learningRate: 0.002, epochs: 2, seed: 5}
    const dir = edited('settings', (s) => ({...s, settings: hashSettings(theirs), settingsDetail: theirs}))
    assert.throws(
      check(dir, {settings: hashSettings(mine), settingsDetail: mine}),
      refusal(dir, `written under different training settings (fingerprint ${hashSettings(theirs)}, this configuration's ${hashSettings(mine)}); they differ in:\n  learningRate: 0.002 → 0.001\nA resume needs the same data, tasks, sampler, optimizer and seed; train without --resume to start over.`),
    )
    const forged = edited('forged', (s) => ({...s, settings: hashSettings(mine), settingsDetail: theirs}))
    assert.throws(check(forged, {settings: hashSettings(mine), settingsDetail: mine}), refusal(forged, `its settings fingerprint ${hashSettings(mine)} is not that of the settings it records (the file was edited or damaged)`))
    assert.deepEqual(settingsDifferences({a: [1, 2], b: 'x'}, {a: [1, 2], c: true}), ['b: "x" → absent', 'c: absent → true'])
  })

  it('refuses another seed or plan length', () => {
    assert.throws(check(checkpoint, {seed: 6}), refusal(checkpoint, "seed 5 is not this run's seed 6"))
    assert.throws(check(checkpoint, {totalSteps: 10, epochs: 3}), refusal(checkpoint, 'the checkpoint plans 8 steps, this configuration 10'))
  })

  it("given a fresh sampler of the run, refuses a sampler RNG state that is not the epoch's (and leaves the sampler as it was)", () => {
    const sampler = createDynamic([{name: 'toy-sts', task: 'sts', size: 20}], {batchSizes: {ir: 6, sts: 5}}, 11)
    const initial = sampler.getState()
    assert.doesNotThrow(check(checkpoint, {sampler}))
    const dir = edited('rng', (s) => ({...s, sampler: {...s.sampler, epochRng: s.sampler.epochRng + 1}}))
    assert.throws(check(dir, {sampler}), refusal(dir, `its sampler RNG state ${state.sampler.epochRng + 1} is not the one epoch 0 of this run starts with (${state.sampler.epochRng})`))
    assert.deepEqual(sampler.getState(), initial)
  })

  it('refuses histories that run past the step', () => {
    const dir = edited('history', (s) => ({...s, history: [...s.history, {step: 7, loss: {sts: 1}}]}))
    assert.throws(check(dir), refusal(dir, "history: step 7 is out of order or beyond the checkpoint's step 3"))
  })

  it('refuses data that changed since the checkpoint: other row counts or another content checksum', () => {
    assert.throws(check(checkpoint, {data: [{name: 'toy-sts', rows: 19}]}), refusal(checkpoint, 'dataset 1 (toy-sts) changed since the checkpoint was written: 20 usable rows then, 19 now; a resumed run must see the same data (train without --resume to start over)'))
    const dir = edited('digest', (s) => ({...s, data: [{name: 'toy-sts', rows: 20, digest: 'aaaa'}]}))
    assert.throws(check(dir, {data: [{name: 'toy-sts', rows: 20, digest: 'bbbb'}]}), refusal(dir, /dataset 1 \(toy-sts\) changed since the checkpoint was written: its content checksum was aaaa, it is bbbb/))
    assert.throws(check(checkpoint, {data: [...data, ...data]}), refusal(checkpoint, 'the checkpoint trained on 1 datasets, this configuration has 2'))
  })
})

describe('optimizer state', () => {
  it('fits the model: every moment present with its shape, no more updates than steps', async () => {
    const moments = await readOptimizerState(checkpoint)
    const encoder = new ToyEncoder(1, 8, 97, 3)
    assert.doesNotThrow(() => checkOptimizerState(moments, encoder.variables, 3, checkpoint))
    const file = join(checkpoint, OPTIMIZER_FILE)
    assert.throws(() => checkOptimizerState(moments, encoder.variables, 2, checkpoint), {name: 'CheckpointError', message: `${file}: the optimizer made 3 updates, more than the 2 steps trainer_state.json records`})
    const wider = new ToyEncoder(1, 9, 97, 3)
    assert.throws(() => checkOptimizerState(moments, wider.variables, 3, checkpoint), {name: 'CheckpointError', message: `${file}: tensor "m.embeddings.weight" has shape [97, 8], the model's parameter [97, 9]`})
    const deeper = new ToyEncoder(2, 8, 97, 3)
    assert.throws(() => checkOptimizerState(moments, deeper.variables, 3, checkpoint), {name: 'CheckpointError', message: `${file}: no tensor "m.layer.1.weight" for the model's parameter layer.1.weight`})
    for (const e of [encoder, wider, deeper]) e.dispose()
  })

  it('a missing file, a missing step count and a NaN moment are errors naming the file and tensor', async () => {
    const dir = join(root, 'optim')
    mkdirSync(dir, {recursive: true})
    await assert.rejects(readOptimizerState(dir), {name: 'CheckpointError', message: `${join(dir, OPTIMIZER_FILE)}: missing; the checkpoint is incomplete (expected the optimizer state beside trainer_state.json)`})
    const file = join(dir, OPTIMIZER_FILE)
    await writeSafetensors(file, [{name: 'm.w', shape: [2], data: new Float32Array([0, 1])}])
    await assert.rejects(readOptimizerState(dir), {name: 'CheckpointError', message: /__metadata__\.step: expected the optimizer's step count, got undefined/})
    await writeSafetensors(file, [{name: 'm.w', shape: [2], data: new Float32Array([0, 1])}, {name: 'v.w', shape: [2], data: new Float32Array([NaN, 1])}], {step: '3'})
    await assert.rejects(readOptimizerState(dir), {name: 'CheckpointError', message: /optimizer\.safetensors: tensor "v\.w" holds NaN at index 0; the optimizer state is damaged/})
  })
})

describe('Trainer.resumeFrom', () => {
  it('refuses an edited state before restoring anything, and resumes from the real one', async () => {
    const dir = edited('trainer999', (s) => ({...s, step: 999}))
    const encoder = new ToyEncoder(1, 8, 97, 3)
    const trainer = makeTrainer({encoder, datasets: [stsDataset(20)], checkpoint: {dir: join(root, 'continued'), everyEpoch: true, everySteps: 0, keepLast: 1}})
    await assert.rejects(trainer.resumeFrom(dir), refusal(dir, 'step 999 is beyond the 8 steps of the plan'))
    const restored = await trainer.resumeFrom(checkpoint)
    assert.equal(restored.step, 3)
    const summary = await trainer.run()
    assert.equal(summary.steps, 8)
    // The checkpoint of the finished run (sampler past the last epoch) fits the plan too.
    const final = listCheckpoints(join(root, 'continued')).at(-1)!
    assert.equal(final.step, 8)
    const finalState = readTrainerState(final.path)
    assert.deepEqual({epoch: finalState.sampler.epoch, position: finalState.sampler.position}, {epoch: 2, position: 0})
    assert.doesNotThrow(() => checkResumeState(finalState, final.path, expectations()))
    trainer.dispose()
    encoder.dispose()
  })
})
