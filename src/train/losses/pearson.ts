/**
 * `pearson` — one minus the Pearson correlation between predicted similarities and gold labels.
 *
 * Inputs: n pairs with cosine similarity s_i (of normalised embeddings) and gold label y_i.
 * Formula (population statistics):
 *   r = Σ (s_i − s̄)(y_i − ȳ) / sqrt( Σ (s_i − s̄)² · Σ (y_i − ȳ)² ),   L = 1 − r
 * and L = 0 when the labels are constant (r is undefined; no learning signal).
 * Options: none. Relations: scale-free in s, so it complements the ranking losses (`rank-kl`,
 * `pro`) in CoDiEmb's STS objective (weight 2 in the paper's combination).
 */
import * as tf from '@tensorflow/tfjs-core'
import {checkLabels, pairSimilarityLoss, zeroLoss} from './similarity.js'
import type {StsLoss} from './types.js'

export function pearsonLoss(similarities: tf.Tensor1D, labels: ArrayLike<number>): tf.Scalar {
  checkLabels('pearson', similarities, labels)
  const y = Float32Array.from(labels)
  const mean = y.reduce((a, b) => a + b, 0) / y.length
  const centred = y.map((v) => v - mean)
  const labelSquares = centred.reduce((a, v) => a + v * v, 0)
  if (!(labelSquares > 0)) return zeroLoss(similarities)
  return tf.tidy(() => {
    const s = tf.sub(similarities, tf.mean(similarities))
    const covariance = tf.sum(tf.mul(s, tf.tensor1d(centred)))
    // The tiny epsilon only matters when every prediction is identical (it avoids 0/0).
    const norm = tf.sqrt(tf.add(tf.mul(tf.sum(tf.square(s)), labelSquares), 1e-20))
    return tf.sub(1, tf.div(covariance, norm)) as tf.Scalar
  })
}

export function create(): StsLoss {
  return pairSimilarityLoss('pearson', pearsonLoss)
}
