/**
 * The data-parallel equivalence fixture (test/train/distributed.test.ts): a toy encoder, an IR and
 * an STS dataset whose rows have exactly one positive and one negative (so a batch's texts do not
 * depend on its seed: the ranks' seeds and the reference's differ), dropout off, the dynamic sampler
 * with per-device batch sizes (global = × world size).
 */
import * as tf from '@tensorflow/tfjs-core'
import {create as createIrInfoNce} from '../../src/train/losses/ir-infonce.js'
import {create as createCodiembSts} from '../../src/train/losses/codiemb-sts.js'
import {create as createDynamic} from '../../src/train/samplers/dynamic.js'
import {PAPER_INSTRUCTIONS, type IrTrainingDataset, type StsTrainingDataset} from '../../src/train/data.js'
import {IrObjective, StsObjective} from '../../src/train/objective.js'
import {Trainer} from '../../src/train/trainer.js'
import {type DataParallel, ShardedSampler} from '../../src/train/distributed.js'
import {globalBatchOptions} from '../../src/train/global-batch.js'
import type {IrLoss, StsLoss} from '../../src/train/losses/types.js'
import type {EpochBatches, Sampler, SamplerBatch} from '../../src/train/samplers/types.js'
import {arrayEpoch} from '../../src/train/samplers/outline.js'
import {PartLoss} from '../../src/train/part-loss.js'
import {prepareBatch} from '../../src/train/batch.js'
import {ToyEncoder, type ToyBatch} from './toy-encoder.js'

const WORDS = ['red', 'green', 'blue', 'amber', 'violet', 'grey', 'teal', 'pink', 'apple', 'river', 'engine', 'violin', 'garden', 'comet']

export function equivalenceData(): [IrTrainingDataset, StsTrainingDataset] {
  const ir: IrTrainingDataset = {
    task: 'ir', name: 'eq-ir', path: '(memory)', dropped: 0,
    rows: Array.from({length: 16}, (_, i) => ({
      id: `q${i}`, query: `which ${WORDS[i % 14]} ${WORDS[(i * 3) % 14]}?`, instruction: '',
      positives: [`the ${WORDS[i % 14]} ${WORDS[(i * 3) % 14]} ${i}`], negatives: [`a ${WORDS[(i + 5) % 14]} ${WORDS[(i * 7 + 2) % 14]}`],
      positive_scores: null, negative_scores: null,
    })),
  }
  const sts: StsTrainingDataset = {
    task: 'sts', name: 'eq-sts', path: '(memory)', dropped: 0,
    rows: Array.from({length: 12}, (_, i) => ({id: `s${i}`, text1: `the ${WORDS[i % 14]} is here`, text2: `here is the ${WORDS[(i * 5 + 1) % 14]}`, score: (i % 4) / 3, raw_score: 0, instruction: 'score'})),
  }
  return [ir, sts]
}

/** Per-device batch sizes of the fixture. */
export const PER_DEVICE = {ir: 4, sts: 3}

/** The single-process plan of global batches (per-device sizes × world size). */
export function globalSampler(worldSize: number): Sampler {
  const [ir, sts] = equivalenceData()
  return createDynamic([{name: ir.name, task: 'ir', size: ir.rows.length}, {name: sts.name, task: 'sts', size: sts.rows.length}], globalBatchOptions({batchSizes: PER_DEVICE}, worldSize), 21)
}

/** Each global batch of `inner` handed out as its world-size shards in rank order: the reference's sub-batches. */
export class SubBatchSampler extends ShardedSampler {
  private queue: SamplerBatch[] = []
  constructor(inner: Sampler, private readonly parts: number) {
    super(inner, 0, parts)
  }
  override epochPlan(): SamplerBatch[] {
    return this.inner.epochPlan().flatMap((b) => Array.from({length: this.parts}, (_, r) => new ShardedSampler(this.inner, r, this.parts).shard(b, 0)))
  }
  // Its epoch is `parts` sub-batches per global batch: counted and listed from its own epochPlan().
  override batchCount(): number {
    return this.epochPlan().length
  }
  override epochBatches(): EpochBatches {
    return arrayEpoch(this.epochPlan())
  }
  override next(): SamplerBatch | undefined {
    if (this.queue.length === 0) {
      const b = this.inner.next()
      if (!b) return undefined
      this.queue = Array.from({length: this.parts}, (_, r) => new ShardedSampler(this.inner, r, this.parts).shard(b, 0))
    }
    return this.queue.shift()
  }
}

export function dataParallelTrainer(options: {distributed?: DataParallel; referenceParts?: number; crossDeviceNegatives?: boolean; onEvent?: (e: {type: string}) => void}): {trainer: Trainer<ToyBatch>; encoder: ToyEncoder} {
  const worldSize = options.distributed?.size ?? 1
  const datasets = equivalenceData()
  // Every rank starts from other weights: the broadcast from rank 0 must make them equal.
  const encoder = new ToyEncoder(2, 16, 97, 3 + (options.distributed?.rank ?? 0), 0)
  const global = globalSampler(options.referenceParts ?? worldSize)
  const sampler = options.distributed ? new ShardedSampler(global, options.distributed.rank, worldSize) : new SubBatchSampler(global, options.referenceParts ?? 1)
  const irLoss = createIrInfoNce({positives: 1, negatives: 1, temperature: 0.05, crossDeviceNegatives: options.crossDeviceNegatives}) as IrLoss
  const trainer = new Trainer<ToyBatch>({
    encoder, datasets, sampler,
    objectives: {ir: new IrObjective([{loss: irLoss, weight: 1}]), sts: new StsObjective([{loss: createCodiembSts({}) as StsLoss, weight: 1}])},
    optimizer: {learningRate: 3e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01, maxGradNorm: 1},
    warmupRatio: 0, epochs: 1,
    gradientAccumulation: options.distributed ? 1 : (options.referenceParts ?? 1),
    seed: 5, maxLength: {query: 48, passage: 48, sts: 48}, instructions: PAPER_INSTRUCTIONS,
    dropout: false, prefetch: 1, settings: 'eq', tokenizeInWorker: false,
    distributed: options.distributed,
    onEvent: options.onEvent,
  })
  return {trainer, encoder}
}

/**
 * One IR batch (the first 2·PER_DEVICE.ir rows): this rank's shard with cross-device negatives,
 * its loss and the gradients averaged over the ranks; without `dp`, the whole batch in one process
 * with in-batch negatives over all of it.
 */
export async function crossDeviceGradients(dp?: DataParallel, cacheChunkSize?: number): Promise<{loss: number; grads: Record<string, number[]>}> {
  const [ir] = equivalenceData()
  const encoder = new ToyEncoder(2, 16, 97, 3, 0)
  const irLoss = createIrInfoNce({positives: 1, negatives: 1, temperature: 0.05, crossDeviceNegatives: dp !== undefined, ...(cacheChunkSize ? {cache: {chunkSize: cacheChunkSize}} : {})}) as IrLoss
  const objectives = {ir: new IrObjective([{loss: irLoss, weight: 1}])}
  const partLoss = new PartLoss(encoder, objectives, {dropout: false, collectives: dp?.group})
  const rows = Array.from({length: 2 * PER_DEVICE.ir}, (_, i) => i)
  const mine = dp ? rows.slice(dp.rank * PER_DEVICE.ir, (dp.rank + 1) * PER_DEVICE.ir) : rows
  const item = {epoch: 0, index: 0, stateBefore: {epoch: 0, position: 0, epochRng: 0}, batch: {parts: [{dataset: 0, rows: mine}]}}
  const prepared = await prepareBatch({encoder, datasets: [ir], objectives, maxLength: {query: 48, passage: 48, sts: 48}, instructions: PAPER_INSTRUCTIONS}, item, 1)
  const {value, grads} = partLoss.gradients(prepared.parts[0]!, 1)
  if (dp) await dp.averageGradients(grads, encoder.variables)
  const out: Record<string, number[]> = {}
  for (const [name, g] of grads) out[name] = Array.from(g.dataSync())
  tf.dispose([...grads.values()])
  encoder.dispose()
  return {loss: value, grads: out}
}
