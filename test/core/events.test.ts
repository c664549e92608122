/**
 * data-schemas/events.schema.json and the TypeScript union of src/core/events.ts describe the same
 * events: one sample of every member (typed against the union, so a new member without a sample does
 * not compile) validates against the schema, the schema has a member for every `type` and no other,
 * and it rejects what the types reject.
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import type {DoneEvent, ProbeResult, ProgressEvent, ProgressEventType, StepEvent, TrainPlan} from '../../src/core/events.js'
import {REPO_ROOT} from '../helpers/env.js'
import {assertEvent, EVENTS_SCHEMA as schema, validateEvent as validate} from '../helpers/events.js'

const plan: TrainPlan = {
  sampler: {name: 'dynamic', options: {batchSizes: {ir: 4}}},
  datasets: [{name: 'faq-train', task: 'ir', path: '/p/train.ir-example.arrow', rows: 8, droppedRows: 0, batchSize: 4, batchesPerEpoch: 2, stepsPerEpoch: 2}],
  batchesPerEpoch: 2,
  stepsPerEpoch: 2,
  stepsPerEpochByTask: {ir: 2},
  epochs: 1,
  totalSteps: 2,
  warmupSteps: 0,
  gradientAccumulation: 1,
  examplesPerBatch: {ir: 4},
  examplesPerStep: {ir: 4},
  negativesPerQuery: {hard: 3, inBatch: 3, total: 6, positivesPerQuery: 1},
  losses: {ir: [{name: 'ir-infonce', weight: 1, options: {temperature: 0.05}}]},
  droppedRows: 0,
}
const step: StepEvent = {
  type: 'step', step: 1, totalSteps: 2, epoch: 0, lr: 1e-3, loss: {ir: 1.2}, components: {sts: {pro: 0.5}}, gradNorm: 0.9,
  examples: 4, tokens: 120, examplesPerSecond: 40, tokensPerSecond: 1200, elapsedSeconds: 0.1, etaSeconds: 0.1,
}
const probe: ProbeResult = {type: 'probe', step: 0, totalSteps: 2, when: 'start', loss: {ir: 1.3}, components: {}, batches: {ir: 1}, rows: {ir: 4}, seconds: 0.02}

/** One sample per member (several where a member has variants or optional tags). */
const SAMPLES: {[T in ProgressEventType]: Extract<ProgressEvent, {type: T}>[]} = {
  backend: [{type: 'backend', name: 'cpu', reason: 'pure JS'}],
  error: [{type: 'error', name: 'UsageError', message: 'input file not found: x', exitCode: 2}],
  status: [{type: 'status', message: 'loading models/tiny'}, {type: 'status', message: 'saving', stage: 'train-a'}],
  plan: [
    {type: 'plan', ...plan},
    {
      type: 'plan', ...plan,
      memory: {
        backend: 'torch', device: 'cuda:0', precision: 'bf16', kernels: 'fused', deviceBytes: 151e9, deviceSource: '--device-memory', usableBytes: 135.9e9,
        parameters: 1000, parameterBytes: 4000, gradientBytes: 4000, optimizerBytes: 8000,
        tasks: [{
          task: 'ir', passes: [{name: 'queries', rows: 4, seqLen: 64}, {name: 'passages', rows: 24, seqLen: 256}],
          configured: {checkpointing: true, chunkSize: 8, activationBytes: 1e6, peakBytes: 1.1e6, fits: true},
          variants: [{checkpointing: false, activationBytes: 5e6, peakBytes: 5.1e6, fits: true}],
        }],
        autoChunkSize: 8,
        warnings: [],
      },
    },
  ],
  step: [step, {...step, stage: 'train-b'}],
  probe: [probe],
  checkpoint: [{type: 'checkpoint', path: 'runs/x-checkpoints/checkpoint-2', step: 2}],
  validation: [{type: 'validation', epoch: 0, spearman: {'faq-sts': 12.5}}],
  interrupted: [
    {type: 'interrupted', signal: 'SIGINT', step: 5, totalSteps: 16, checkpoint: 'runs/x-checkpoints/checkpoint-5'},
    {type: 'interrupted', signal: 'SIGTERM', step: 0, totalSteps: 16},
  ],
  warning: [
    {type: 'warning', code: 'unverified-file', message: 'data/old.arrow: carries no checksums', file: 'data/old.arrow'},
    {type: 'warning', code: 'skipped-batch', message: 'non-finite loss (NaN) at step 3 of 8', step: 3, epoch: 0, batch: 2, task: 'sts', dataset: 'toy-sts', rows: [4, 9]},
  ],
  done: [
    {type: 'done', command: 'train', output: 'runs/x', steps: 2, lossFirst: {ir: 1.2}, lossLast: {ir: 1.1}, probe: {first: probe, last: {...probe, step: 2, when: 'end'}}},
    {type: 'done', command: 'train', output: 'runs/x', steps: 2, lossFirst: {ir: 1.2}, lossLast: {ir: 1.1}},
    {type: 'done', command: 'embed', stage: 'embed', rows: 4, tokens: 40, seconds: 0.2},
    {type: 'done', command: 'merge', out: 'runs/m', summary: {tensors: 10, merged: 8, copied: 2, parameters: 1000, mergedParameters: 900, meanWeights: [0.5, 0.5], seconds: 0.3}},
    {
      type: 'done', command: 'quickstart', out: '/q', steps: 2,
      models: [{name: 'init', path: '/q/models/init', sts: 10, retrieval: 20, resultsDir: '/q/results/x/y'}],
      improvement: {merged: {sts: 1, retrieval: -1}}, verdict: ['merged: STS Spearman improved'], merge: {path: '/q/models/merged', meanWeights: [0.4, 0.6]},
      report: '/q/report.html', seconds: 60, stageSeconds: {prepare: 2}, cpuSeconds: 55, stageCpuSeconds: {prepare: 1.5},
    },
  ],
  'dataset-start': [{type: 'dataset-start', dataset: 'faq', reader: 'beir', task: 'eval', index: 1, total: 3}, {type: 'dataset-start', dataset: 'snli-ir', reader: 'nli', task: 'ir', index: 0, total: 3, stage: 'prepare'}],
  'dataset-progress': [{type: 'dataset-progress', dataset: 'faq', rows: 50000, rejected: 3}],
  'dataset-done': [{type: 'dataset-done', dataset: 'faq', rows: 20, rejected: 0, unused: 1, seconds: 0.05}],
  listed: [{type: 'listed', files: 2, bytes: 1234}],
  'file-start': [{type: 'file-start', path: 'data/a.parquet', size: 1000, resumeFrom: 0}],
  'file-done': [{type: 'file-done', path: 'data/a.parquet', size: 1000, status: 'present'}],
  'encode-progress': [{type: 'encode-progress', done: 32, total: 100, tokens: 800}, {type: 'encode-progress', done: 100, total: 100}],
  'search-progress': [{type: 'search-progress', done: 16384}],
  'eval-progress': [
    {type: 'eval-progress', task: 'FAQ-Retrieval', stage: 'load'},
    {type: 'eval-progress', task: 'FAQ-Retrieval', stage: 'encode', detail: 'corpus', done: 12, total: 26},
    {type: 'eval-progress', task: 'SNLI-STS', stage: 'search', done: 5, total: 9, model: 'merged'},
  ],
  'eval-task': [
    {type: 'eval-task', task: 'FAQ-STS', split: 'test', main_score: 0.41, scores: {cosine_spearman: 0.41, main_score: 0.41}, evaluation_time: 0.3},
    {type: 'eval-task', task: 'FAQ-STS', split: 'test', main_score: 0.41, scores: {main_score: 0.41}, evaluation_time: 0.3, model: 'init'},
  ],
  'eval-summary': [{type: 'eval-summary', dir: 'results/m/abc', averages: {ir: 0.5, sts: null, overall: 0.5}}],
  'embed-progress': [{type: 'embed-progress', done: 64, tokens: 900, seconds: 1.5}],
  'mine-progress': [{type: 'mine-progress', stage: 'encode corpus', done: 20, total: 20}, {type: 'mine-progress', stage: 'search', done: 20, total: 20}],
  'merge-progress': [{type: 'merge-progress', phase: 'hash', item: '/m/a/model.safetensors', done: 1, total: 3}, {type: 'merge-progress', phase: 'merge', item: 'pooler.dense.bias', done: 40, total: 40, stage: 'merge'}],
  'stage-start': [{type: 'stage-start', stage: 'prepare'}],
  'stage-done': [{type: 'stage-done', stage: 'prepare', seconds: 2.5, cpuSeconds: 2.1}],
  'eval-model': [{type: 'eval-model', model: 'merged', sts: 41.2, retrieval: 38.9}],
}

/** The commands that end with a `done` event. */
const DONE_COMMANDS: {[C in DoneEvent['command']]: true} = {train: true, embed: true, merge: true, quickstart: true}

/** The `type` (and for `done`, `command`) constants of the schema's members. */
function schemaMembers(): {types: string[]; doneCommands: string[]} {
  const members = (schema.oneOf as {$ref: string}[]).map((m) => schema.$defs[m.$ref.replace('#/$defs/', '')])
  return {
    types: [...new Set(members.map((m) => m.properties.type.const as string))],
    doneCommands: members.filter((m) => m.properties.type.const === 'done').map((m) => m.properties.command.const as string),
  }
}

describe('data-schemas/events.schema.json', () => {
  it('has one member per event type of the TypeScript union, and one done member per command', () => {
    const {types, doneCommands} = schemaMembers()
    assert.deepEqual([...types].sort(), Object.keys(SAMPLES).sort())
    assert.deepEqual([...doneCommands].sort(), Object.keys(DONE_COMMANDS).sort())
  })

  it('accepts a sample of every member, as an engine reports it and as --events writes it (with time)', () => {
    for (const events of Object.values(SAMPLES))
      for (const event of events) {
        assertEvent(event)
        assertEvent(JSON.parse(JSON.stringify({time: new Date().toISOString(), ...event})))
      }
  })

  it('accepts the example lines of data-schemas/README.md', () => {
    const readme = readFileSync(join(REPO_ROOT, 'data-schemas', 'README.md'), 'utf8')
    const section = readme.slice(readme.indexOf('## `--events` NDJSON'), readme.indexOf('## Arrow record files'))
    const lines = /```json\n([\s\S]*?)```/.exec(section)![1]!.trim().split('\n')
    assert.ok(lines.length >= 3)
    for (const line of lines) assertEvent(JSON.parse(line), 'data-schemas/README.md: ')
  })

  it('accepts null where JSON cannot write a measured number (NaN loss, Spearman of a constant)', () => {
    assertEvent(JSON.parse(JSON.stringify({...step, loss: {ir: Number.NaN}, etaSeconds: Number.POSITIVE_INFINITY})))
    assertEvent(JSON.parse(JSON.stringify({type: 'validation', epoch: 1, spearman: {x: Number.NaN}})))
  })

  it('rejects what the types reject: unknown types, missing or extra fields, values outside an enum', () => {
    const bad: unknown[] = [
      {type: 'progress', done: 1},
      {type: 'done', rows: 1},
      {type: 'done', command: 'prepare'},
      {...step, loss: undefined},
      {type: 'checkpoint', path: 'x', step: 1, loss: 2},
      {type: 'eval-progress', task: 't', stage: 'sleep'},
      {type: 'file-done', path: 'a', size: 1, status: 'skipped'},
      {type: 'backend', name: 'cpu', reason: 'x', time: 'yesterday'},
      {type: 'dataset-done', dataset: 'd', rows: -1, rejected: 0, unused: 0, seconds: 0},
      {type: 'interrupted', signal: 'SIGHUP', step: 1, totalSteps: 2},
      {type: 'interrupted', signal: 'SIGINT', step: 1},
    ]
    for (const event of bad) assert.equal(validate(JSON.parse(JSON.stringify(event))), false, JSON.stringify(event))
  })
})
