/**
 * A task's objective: a weighted list of registered losses applied to the same batch
 * (e.g. the paper's STS objective as mid-infonce + 0.5·pro + 2·pearson + 5·rank-kl, or the
 * single `codiemb-sts` entry).
 */
import * as tf from '@tensorflow/tfjs-core'
import type {IrEmbeddings, IrLoss, StsEmbeddings, StsLoss, TrainingLoss} from './losses/types.js'

export interface WeightedLoss<L extends TrainingLoss = TrainingLoss> {
  loss: L
  weight: number
}

/**
 * Receives each term's unweighted value (a kept scalar the caller disposes) when an objective has
 * more than one term, keyed by loss name ("name#2" for a repeated name).
 */
export type ComponentSink = Map<string, tf.Scalar>

/** Weighted sum of the terms; records each unweighted term in `sink` when there are several. */
function weightedSum<E>(terms: {loss: {name: string; compute(batch: E): tf.Scalar}; weight: number}[], batch: E, sink?: ComponentSink): tf.Scalar {
  return tf.tidy(() => {
    const values = terms.map((t) => t.loss.compute(batch))
    if (sink && terms.length > 1) {
      const seen = new Map<string, number>()
      terms.forEach((t, i) => {
        const n = (seen.get(t.loss.name) ?? 0) + 1
        seen.set(t.loss.name, n)
        sink.set(n === 1 ? t.loss.name : `${t.loss.name}#${n}`, tf.keep(values[i]))
      })
    }
    return tf.addN(values.map((v, i) => tf.mul(v, terms[i].weight))) as tf.Scalar
  })
}

export interface TaskObjective {
  ir?: IrObjective
  sts?: StsObjective
}

export class IrObjective {
  readonly positives: number
  readonly negatives: number
  /** GradCache chunk size as configured (`auto` is resolved by the caller and handed to the trainer). */
  readonly cacheChunkSize?: number | 'auto'

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

  compute(batch: IrEmbeddings, sink?: ComponentSink): tf.Scalar {
    return weightedSum(this.terms, batch, sink)
  }
}

export class StsObjective {
  readonly needsMiddleLayer: boolean

  constructor(readonly terms: WeightedLoss<StsLoss>[]) {
    if (terms.length === 0) throw new Error('the sts task has no loss')
    this.needsMiddleLayer = terms.some((t) => t.loss.needsMiddleLayer && t.weight !== 0)
  }

  compute(batch: StsEmbeddings, sink?: ComponentSink): tf.Scalar {
    return weightedSum(this.terms, batch, sink)
  }
}
