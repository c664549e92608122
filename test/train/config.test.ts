/** The `train` section: normalisation (schema defaults), the settings fingerprint across versions, default losses, loss options. */
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {loadConfig} from '../../src/config/load.js'
import {TrainConfigError, normaliseTrainSection, type TrainSectionInput} from '../../src/train/config.js'
import {DEFAULT_STS_LOSSES, buildLosses, resumeSettings, settingsFingerprint} from '../../src/train/setup.js'
import {BUILTINS} from '../helpers/env.js'

/** A section that leaves every defaulted key out. */
const plain: TrainSectionInput = {
  model: 'models/tiny',
  output: 'runs/x',
  dataDir: 'prepared',
  data: ['ir.arrow', {path: 'sts.arrow', limit: 100}],
  tasks: {ir: {losses: [{name: 'ir-infonce', options: {positives: 1, negatives: 3}}], maxLength: {query: 16, passage: 32}}},
  sampler: {name: 'single', options: {batchSize: 8}},
  epochs: 2,
  learningRate: 1e-3,
  seed: 5,
  checkpoint: {keepLast: 3},
  validation: {sts: ['sts.arrow']},
}

/** The same settings with every default written out. */
const spelled: TrainSectionInput = {
  ...plain,
  tasks: {ir: {...plain.tasks!.ir}, sts: {maxLength: 64}},
  warmupRatio: 0.03,
  weightDecay: 0,
  adamBetas: [0.9, 0.999],
  adamEpsilon: 1e-8,
  maxGradNorm: 1,
  gradientAccumulation: 1,
  dropout: true,
  instructions: {template: 'Instruction: {instruction} Query: ', queries: true, sts: true},
}

/**
 * What codiemb computed before defaults were filled in, for these sections (settingsFingerprint over
 * the section as written, run with that version): trainer_state.json of its checkpoints holds them.
 */
const EARLIER = {plain: '02a64a637974123f', spelled: '5b662133754c7739'}

describe('train section', () => {
  it('normalising fills in every schema default (the keys TrainSection has as required) and leaves the input alone', () => {
    const input: TrainSectionInput = {model: 'm', output: 'o', data: ['x.arrow']}
    const section = normaliseTrainSection(input)
    assert.deepEqual(input, {model: 'm', output: 'o', data: ['x.arrow']})
    assert.deepEqual(section, {
      model: 'm',
      output: 'o',
      data: ['x.arrow'],
      tasks: {ir: {maxLength: {query: 64, passage: 256}}, sts: {maxLength: 64}},
      sampler: {name: 'dynamic', options: {}},
      epochs: 1,
      learningRate: 1e-5,
      warmupRatio: 0.03,
      weightDecay: 0,
      adamBetas: [0.9, 0.999],
      adamEpsilon: 1e-8,
      maxGradNorm: 1,
      gradientAccumulation: 1,
      dropout: true,
      gradientCheckpointing: false,
      instructions: {template: 'Instruction: {instruction} Query: ', queries: true, sts: true},
      prefetch: 2,
      logEvery: 1,
      checkpoint: {everyEpoch: true, everySteps: 0, keepLast: 2},
      validation: {batchSize: 64},
      onNonFinite: 'stop',
    })
  })

  it('the config loader and normaliseTrainSection give the same section', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codiemb-train-config-'))
    writeFileSync(join(dir, 'c.json'), JSON.stringify({train: plain}))
    const loaded = await loadConfig(join(dir, 'c.json'))
    assert.deepEqual(loaded.config.train, normaliseTrainSection(plain))
    assert.deepEqual(loaded.asWritten.train, plain)
  })

  it('bad settings are a TrainConfigError (exit 2) naming their pointer; a sampler still needs its name', () => {
    const e = (() => {
      try {
        normaliseTrainSection({...plain, epochs: 0, sampler: {options: {}} as never})
      } catch (error) {
        return error as TrainConfigError
      }
    })()
    assert.ok(e instanceof TrainConfigError)
    assert.equal(e.exitCode, 2)
    assert.match(e.message, /^invalid train section \(2 problems\):/)
    assert.match(e.message, /\n {2}\/train\/epochs: expected integer >= 1, got 0/)
    assert.match(e.message, /\n {2}\/train\/sampler\/name: required, missing/)
  })
})

describe('settings fingerprint', () => {
  it('is the same whether defaults are written out or left to the schema', () => {
    assert.equal(settingsFingerprint(normaliseTrainSection(plain), 5), settingsFingerprint(normaliseTrainSection(spelled), 5))
  })

  it('equals what earlier versions computed for a config that writes out no default', () => {
    assert.equal(settingsFingerprint(normaliseTrainSection(plain), 5), EARLIER.plain)
    // The same hash, recomputed the earlier way: sha256 over the section as written minus the keys that may change across a resume.
    const {model: _m, output: _o, checkpoint: _c, validation: _v, ...rest} = plain
    assert.equal(createHash('sha256').update(JSON.stringify({...rest, seed: 5})).digest('hex').slice(0, 16), EARLIER.plain)
  })

  it('still changes with the settings, not with what a resume may change', () => {
    const base = settingsFingerprint(normaliseTrainSection(plain), 5)
    assert.notEqual(settingsFingerprint(normaliseTrainSection({...plain, learningRate: 2e-3}), 5), base)
    assert.notEqual(settingsFingerprint(normaliseTrainSection({...plain, epochs: 1}), 5), base)
    assert.notEqual(settingsFingerprint(normaliseTrainSection(plain), 6), base)
    assert.equal(settingsFingerprint(normaliseTrainSection({...plain, output: 'elsewhere', maxSteps: 3, logEvery: 5, checkpoint: {everySteps: 10}}), 5), base)
    // Activation checkpointing changes memory, not the trajectory: a resume may switch it.
    assert.equal(settingsFingerprint(normaliseTrainSection({...plain, gradientCheckpointing: true}), 5), base)
  })

  it('a checkpoint of an earlier version resumes when the settings are the same, written out or not', () => {
    const section = normaliseTrainSection(spelled)
    const setup = {settings: settingsFingerprint(section, 5), seed: 5}
    // Its config wrote out no default: its fingerprint is this version's.
    assert.deepEqual(resumeSettings(EARLIER.plain, setup, plain), {settings: EARLIER.plain, earlier: false})
    // Its config wrote out defaults: it hashed them as written, which the section as written reproduces.
    assert.notEqual(EARLIER.spelled, setup.settings)
    assert.deepEqual(resumeSettings(EARLIER.spelled, setup, spelled), {settings: EARLIER.spelled, earlier: true})
    // Without the section as written, or with other settings, the trainer gets this run's fingerprint and refuses.
    assert.deepEqual(resumeSettings(EARLIER.spelled, setup), {settings: setup.settings, earlier: false})
    assert.deepEqual(resumeSettings(EARLIER.spelled, setup, {...spelled, learningRate: 2e-3}), {settings: setup.settings, earlier: false})
  })
})

describe('losses', () => {
  it("the default STS objective is the paper's, from the codiemb-sts weights", () => {
    assert.deepEqual(DEFAULT_STS_LOSSES, [
      {name: 'mid-infonce', weight: 1},
      {name: 'pro', weight: 0.5},
      {name: 'pearson', weight: 2},
      {name: 'rank-kl', weight: 5},
    ])
  })

  it('loss options get their schema defaults; bad ones are reported at their config pointer', async () => {
    const {resolved} = await buildLosses(BUILTINS, 'ir', [{name: 'ir-infonce', options: {negatives: 3}}])
    assert.deepEqual(resolved, [{name: 'ir-infonce', weight: 1, options: {negatives: 3, temperature: 0.02, positives: 2}}])
    await assert.rejects(
      buildLosses(BUILTINS, 'sts', ['pearson', {name: 'pro', options: {temperature: 'x'}}]),
      (e: Error) =>
        e instanceof TrainConfigError &&
        e.message === 'invalid options for loss "pro" (1 problem):\n  /train/tasks/sts/losses/1/options/temperature: expected number > 0, got "x"',
    )
  })
})
