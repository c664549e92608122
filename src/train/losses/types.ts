/**
 * What every training loss receives and returns. Losses see embeddings, never texts: the trainer
 * encodes a batch, pools, L2-normalises and hands the rows over in the layouts below. Every
 * similarity a loss uses is therefore a plain dot product of unit vectors (= cosine similarity),
 * and gradients flow to the normalised embeddings exactly as in the reference implementation.
 *
 * This module imports only types, so ./index.ts stays free of tfjs at load time.
 */
import type * as tf from '@tensorflow/tfjs-core'
export type {TaskKind} from '../../core/task-kind.js'

/**
 * An IR batch: B queries, each with P positives and N hard negatives.
 * `passages` holds B·(P+N) rows grouped per query: query i's P positives first, then its N
 * negatives (rows i·(P+N) … i·(P+N)+P+N−1). Batches gathered from several devices are simply the
 * row-wise concatenation of each device's `queries` and of each device's `passages` (in the same
 * device order), which keeps this layout.
 */
export interface IrEmbeddings {
  queries: tf.Tensor2D
  passages: tf.Tensor2D
  positives: number
  negatives: number
  /** The processes of a data-parallel step (training passes only): a loss may gather their rows. */
  devices?: DeviceGroup
}

/**
 * The ranks of a data-parallel run as a loss sees them. `allGather` returns every rank's tensor in
 * rank order as constants (no gradient flows back to other ranks); every rank must call it the same
 * number of times in the same order. Gradients are averaged over the ranks after the step's backward.
 */
export interface DeviceGroup {
  rank: number
  worldSize: number
  allGather(t: tf.Tensor2D): tf.Tensor2D[]
}

/**
 * An STS batch of n text pairs. `left`/`right` are the final pooled, normalised embeddings of text1
 * and text2; `leftMiddle`/`rightMiddle` the same pooled from the middle layer (present when a loss
 * says `needsMiddleLayer`). `labels` are gold similarities (normalised to [0,1] by `prepare`);
 * they are data, not tensors: no gradient flows to them.
 */
export interface StsEmbeddings {
  left: tf.Tensor2D
  right: tf.Tensor2D
  leftMiddle?: tf.Tensor2D
  rightMiddle?: tf.Tensor2D
  labels: ArrayLike<number>
}

export interface IrLoss {
  readonly task: 'ir'
  readonly name: string
  readonly needsMiddleLayer: false
  /** Positives and negatives per query this loss expects in a batch. */
  readonly positives: number
  readonly negatives: number
  /**
   * GradCache chunk size (rows encoded per chunk) when the loss asks for cached training; `auto`:
   * the trainer's caller resolves it to the largest chunk that fits the device (src/train/memory-plan.ts).
   */
  readonly cacheChunkSize?: number | 'auto'
  compute(batch: IrEmbeddings): tf.Scalar
}

export interface StsLoss {
  readonly task: 'sts'
  readonly name: string
  readonly needsMiddleLayer: boolean
  compute(batch: StsEmbeddings): tf.Scalar
}

export type TrainingLoss = IrLoss | StsLoss

/** What a loss entry's load() resolves to. `options` have been validated against the entry's optionsSchema. */
export interface LossModule {
  create(options?: Record<string, unknown>): TrainingLoss
}
