/**
 * One IR training step of a randomly initialised BERT for memory measurements
 * (test/train/memory-estimate.test.ts): every text long enough to be cut at the maximum length, so
 * the step's shape is exactly the memory plan's (the batch at maximum length), and the passes the
 * plan would list for it.
 */
import * as tf from '@tensorflow/tfjs-core'
import type {Registry} from '../../src/registry/registry.js'
import {type Encoder, initRandomEncoder} from '../../src/model/encoder.js'
import {Trainer} from '../../src/train/trainer.js'
import {create as createIrInfoNce} from '../../src/train/losses/ir-infonce.js'
import {create as createDynamic} from '../../src/train/samplers/dynamic.js'
import {IrObjective} from '../../src/train/objective.js'
import {PAPER_INSTRUCTIONS, type IrTrainingDataset} from '../../src/train/data.js'
import type {Pass} from '../../src/train/memory-estimate.js'

export interface StepSpec {
  layers: number
  hidden: number
  heads: number
  intermediate: number
  /** Queries per batch; each has 2 positives and 4 negatives. */
  queries: number
  maxLength: number
}

const POSITIVES = 2
const NEGATIVES = 4

/** The passes of one batch: queries and their passages, at maximum length. */
export function stepPasses(spec: StepSpec): Pass[] {
  return [
    {name: 'queries', rows: spec.queries, seqLen: spec.maxLength},
    {name: 'passages', rows: spec.queries * (POSITIVES + NEGATIVES), seqLen: spec.maxLength},
  ]
}

const long = (i: number) => `the quick brown fox ${i} jumps over the lazy dog and keeps running far away `.repeat(4)

/** Two batches' worth of rows (the sampler's second batch lets a second trainer run a step too). */
function dataset(queries: number): IrTrainingDataset {
  const rows = Array.from({length: 2 * queries}, (_, i) => ({
    id: `q${i}`,
    query: long(i),
    instruction: '',
    positives: Array.from({length: POSITIVES}, (_, k) => long(100 * (i + 1) + k)),
    negatives: Array.from({length: NEGATIVES}, (_, k) => long(1000 * (i + 1) + k)),
    positive_scores: null,
    negative_scores: null,
  }))
  return {task: 'ir', name: 'memory-ir', path: '(memory)', rows, dropped: 0}
}

export function randomEncoder(spec: StepSpec, registry: Registry, tokenizerDir: string): Promise<Encoder> {
  return initRandomEncoder({registry, arch: 'bert', tokenizerDir, layers: spec.layers, hidden: spec.hidden, heads: spec.heads, intermediate: spec.intermediate, maxPositions: 64, seed: 1})
}

/** A trainer over two batches of the spec's shape, dropout on, with or without activation checkpointing. */
export function stepTrainer(encoder: Encoder, spec: StepSpec, gradientCheckpointing: boolean): Trainer {
  const data = dataset(spec.queries)
  return new Trainer({
    encoder,
    datasets: [data],
    sampler: createDynamic([{name: data.name, task: 'ir', size: data.rows.length}], {batchSizes: {ir: spec.queries}}, 1),
    objectives: {ir: new IrObjective([{loss: createIrInfoNce({positives: POSITIVES, negatives: NEGATIVES}), weight: 1}])},
    optimizer: {learningRate: 1e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, maxGradNorm: 1},
    warmupRatio: 0,
    epochs: 1,
    gradientAccumulation: 1,
    seed: 1,
    maxLength: {query: spec.maxLength, passage: spec.maxLength, sts: spec.maxLength},
    instructions: PAPER_INSTRUCTIONS,
    dropout: true,
    gradientCheckpointing,
    prefetch: 1,
    tokenizeInWorker: false,
    stopAfterSteps: 1,
    settings: 'memory',
  })
}

/** The first batch of stepTrainer's data, or its first `queries` rows (for Trainer.gradientsOf). */
export function firstBatch(spec: StepSpec, queries = spec.queries): {parts: {dataset: number; rows: number[]}[]} {
  return {parts: [{dataset: 0, rows: Array.from({length: queries}, (_, i) => i)}]}
}

export {tf}
