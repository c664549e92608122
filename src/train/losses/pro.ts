/**
 * `pro` — Preference Ranking Optimisation over the pairs of a batch, weighted by label gaps.
 *
 * Inputs: n pairs with cosine similarity s_i and gold label y_i.
 * Formula: sort by label descending. For every item k that has strictly lower-labelled items
 * J_k = { j : y_j < y_k }, with weights w_kj = y_k − y_j and temperature τ,
 *   ℓ_k = −log softmax([ max_j w_kj · s_k/τ,  w_kj · s_j/τ for j ∈ J_k ])[0]
 *   L   = mean of ℓ_k over the items k with J_k ≠ ∅     (0 when all labels tie)
 * i.e. item k should out-score every lower item, and bigger label gaps sharpen the comparison.
 * Options: temperature τ (paper 0.05). Relations: pairwise/listwise cousin of `cosent`; weight 0.5
 * in CoDiEmb's STS combination.
 */
import * as tf from '@tensorflow/tfjs-core'
import {MASKED_LOGIT, checkLabels, crossEntropyRows, pairSimilarityLoss, zeroLoss} from './similarity.js'
import type {StsLoss} from './types.js'

export function proLoss(similarities: tf.Tensor1D, labels: ArrayLike<number>, temperature = 0.05): tf.Scalar {
  checkLabels('pro', similarities, labels)
  const n = labels.length
  // Label-gap weights and masks are data: build them in JS, once.
  const rows: number[] = []
  const weights: number[] = []
  const masks: number[] = []
  const maxWeights: number[] = []
  for (let k = 0; k < n; k++) {
    let maxWeight = 0
    const rowWeights = new Array<number>(n).fill(0)
    const rowMask = new Array<number>(n).fill(MASKED_LOGIT)
    for (let j = 0; j < n; j++) {
      if (labels[j] < labels[k]) {
        rowWeights[j] = labels[k] - labels[j]
        rowMask[j] = 0
        maxWeight = Math.max(maxWeight, rowWeights[j])
      }
    }
    if (maxWeight > 0) {
      rows.push(k)
      weights.push(...rowWeights)
      masks.push(...rowMask)
      maxWeights.push(maxWeight)
    }
  }
  if (rows.length === 0) return zeroLoss(similarities)
  return tf.tidy(() => {
    const scaled = tf.div(similarities, temperature)
    const m = rows.length
    const anchor = tf.mul(tf.gather(scaled, tf.tensor1d(rows, 'int32')), tf.tensor1d(maxWeights)) // [m]
    const others = tf.add(tf.mul(tf.tensor2d(weights, [m, n]), tf.reshape(scaled, [1, n])), tf.tensor2d(masks, [m, n])) // [m, n]
    const logits = tf.concat([tf.reshape(anchor, [m, 1]), others], 1)
    return tf.mean(crossEntropyRows(logits as tf.Tensor2D, new Array<number>(m).fill(0))) as tf.Scalar
  })
}

/** Options of `pro` (its registry entry's optionsSchema). */
export interface ProOptions {
  /** τ (default 0.05). */
  temperature?: number
}

export function create(options: ProOptions = {}): StsLoss {
  const temperature = options.temperature ?? 0.05
  return pairSimilarityLoss('pro', (similarities, labels) => proLoss(similarities, labels, temperature))
}
