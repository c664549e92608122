/**
 * A task's objective: a weighted list of registered losses applied to the same batch
 * (e.g. the paper's STS objective as mid-infonce + 0.5·pro + 2·pearson + 5·rank-kl, or the
 * single `codiemb-sts` entry).
 */
import * as tf from '@tensorflow/tfjs-core'
import type {IrEmbeddings, IrLoss, StsEmbeddings, StsLoss, TrainingLoss} from '../plugins/losses/types.js'

export interface WeightedLoss<L extends TrainingLoss = TrainingLoss> {
  loss: L
  weight: number
}

export interface TaskObjective {
  ir?: IrObjective
  sts?: StsObjective
}

export class IrObjective {
  readonly positives: number
  readonly negatives: number
  readonly cacheChunkSize?: number

  constructor(readonly terms: WeightedLoss<IrLoss>[]) {
    if (terms.length === 0) throw new Error('the ir task has no loss')
    const [first] = terms
    for (const t of terms)
      if (t.loss.positives !== first.loss.positives || t.loss.negatives !== first.loss.negatives)
        throw new Error(`ir losses disagree on positives/negatives: ${terms.map((x) => `${x.loss.name} P=${x.loss.positives} N=${x.loss.negatives}`).join(', ')}`)
    this.positives = first.loss.positives
    this.negatives = first.loss.negatives
    this.cacheChunkSize = terms.find((t) => t.loss.cacheChunkSize)?.loss.cacheChunkSize
  }

  compute(batch: IrEmbeddings): tf.Scalar {
    return tf.tidy(() => tf.addN(this.terms.map((t) => tf.mul(t.loss.compute(batch), t.weight))) as tf.Scalar)
  }
}

export class StsObjective {
  readonly needsMiddleLayer: boolean

  constructor(readonly terms: WeightedLoss<StsLoss>[]) {
    if (terms.length === 0) throw new Error('the sts task has no loss')
    this.needsMiddleLayer = terms.some((t) => t.loss.needsMiddleLayer && t.weight !== 0)
  }

  compute(batch: StsEmbeddings): tf.Scalar {
    return tf.tidy(() => tf.addN(this.terms.map((t) => tf.mul(t.loss.compute(batch), t.weight))) as tf.Scalar)
  }
}
