/** Small synthetic training sets and a trainer factory over the toy encoder. */
import * as tf from '@tensorflow/tfjs-core'
import {create as createIrInfoNce} from '../../src/train/losses/ir-infonce.js'
import {create as createCodiembSts} from '../../src/train/losses/codiemb-sts.js'
import {create as createDynamic} from '../../src/train/samplers/dynamic.js'
import type {IrTrainingDataset, StsTrainingDataset, TrainingDataset} from '../../src/train/data.js'
import type {IrExampleRecord, StsPairRecord} from '../../src/io/arrow-records.js'
import {PAPER_INSTRUCTIONS} from '../../src/train/data.js'
import {IrObjective, StsObjective} from '../../src/train/objective.js'
import {Trainer, type TrainerOptions} from '../../src/train/trainer.js'
import type {IrLoss, StsLoss} from '../../src/train/losses/types.js'
import {ToyEncoder, type ToyBatch} from '../helpers/toy-encoder.js'

const COLOURS = ['red', 'green', 'blue', 'amber', 'violet', 'grey', 'teal', 'pink']
const THINGS = ['apple', 'river', 'engine', 'violin', 'garden', 'comet', 'ladder', 'pepper', 'harbor', 'candle']

export function irDataset(size = 24): IrTrainingDataset & {rows: IrExampleRecord[]} {
  const rows = Array.from({length: size}, (_, i) => {
    const thing = THINGS[i % THINGS.length]
    const colour = COLOURS[i % COLOURS.length]
    return {
      id: `q${i}`,
      query: `which ${thing} is ${colour}?`,
      instruction: i % 2 ? 'find the matching sentence' : '',
      positives: [`the ${colour} ${thing}`, `a ${thing} coloured ${colour}`],
      negatives: [0, 1, 2, 3, 4].map((k) => `the ${COLOURS[(i + k + 1) % COLOURS.length]} ${THINGS[(i + 2 * k + 3) % THINGS.length]}`),
      positive_scores: null,
      negative_scores: null,
    }
  })
  return {task: 'ir', name: 'toy-ir', path: '(memory)', rows, dropped: 0}
}

export function stsDataset(size = 20): StsTrainingDataset & {rows: StsPairRecord[]} {
  const rows = Array.from({length: size}, (_, i) => {
    const a = THINGS[i % THINGS.length]
    const same = i % 3 === 0
    const b = same ? a : THINGS[(i * 7 + 1) % THINGS.length]
    return {id: `s${i}`, text1: `the ${a} is here`, text2: `here is the ${b}`, score: same ? 1 : (i % 5) / 5, raw_score: 0, instruction: 'score similarity'}
  })
  return {task: 'sts', name: 'toy-sts', path: '(memory)', rows, dropped: 0}
}

export function makeTrainer(
  overrides: Partial<TrainerOptions<ToyBatch>> & {encoder: ToyEncoder; datasets?: TrainingDataset[]; cacheChunkSize?: number | 'auto'; samplerSeed?: number},
): Trainer<ToyBatch> {
  const datasets = overrides.datasets ?? [irDataset(), stsDataset()]
  const sampler = createDynamic(
    datasets.map((d) => ({name: d.name, task: d.task, size: d.rows.length})),
    {batchSizes: {ir: 6, sts: 5}},
    overrides.samplerSeed ?? 11,
  )
  const irLoss = createIrInfoNce({positives: 2, negatives: 3, temperature: 0.05, ...(overrides.cacheChunkSize ? {cache: {chunkSize: overrides.cacheChunkSize}} : {})}) as IrLoss
  const stsLoss = createCodiembSts({}) as StsLoss
  const {cacheChunkSize: _c, samplerSeed: _s, ...rest} = overrides
  return new Trainer<ToyBatch>({
    datasets,
    sampler,
    objectives: {ir: new IrObjective([{loss: irLoss, weight: 1}]), sts: new StsObjective([{loss: stsLoss, weight: 1}])},
    optimizer: {learningRate: 3e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01, maxGradNorm: 1},
    warmupRatio: 0.1,
    epochs: 2,
    gradientAccumulation: 1,
    seed: 5,
    // Long enough that the toy encoder's character tokens get past the ~37-character instruction prefix.
    maxLength: {query: 64, passage: 64, sts: 64},
    instructions: PAPER_INSTRUCTIONS,
    dropout: true,
    prefetch: 2,
    settings: 'toy',
    ...rest,
  })
}

export async function weightsOf(encoder: ToyEncoder): Promise<Record<string, number[]>> {
  const out: Record<string, number[]> = {}
  for (const [name, v] of encoder.variables) out[name] = Array.from(await v.data())
  return out
}

export {tf}
