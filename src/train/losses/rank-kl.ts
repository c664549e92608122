/**
 * `rank-kl` — KL divergence between the label ranking and the predicted similarity distribution.
 *
 * Inputs: n pairs with cosine similarity s_i and gold label y_i.
 * Formula: rank the labels descending with average ranks for ties (highest label → rank 0), map
 * them to u_i = (n − 1 − rank_i)/(n − 1) ∈ [0, 1], and with temperature τ
 *   P = softmax(u/τ),  Q = softmax(s/τ),  L = KL(P ‖ Q) / n = (1/n) Σ_i P_i (log P_i − log Q_i)
 * (reduced as sum/n, like PyTorch's kl_div with reduction="batchmean" on one row of n items).
 * Options: temperature τ (paper 0.05). Relations: a listwise ranking loss; weight 5 in CoDiEmb's
 * STS combination. With constant labels P is uniform, so the loss still pushes the similarities
 * towards equality.
 */
import * as tf from '@tensorflow/tfjs-core'
import {checkLabels, pairSimilarityLoss, zeroLoss} from './similarity.js'
import type {StsLoss} from './types.js'

/** Average 0-based ranks of `values` in descending order (ties share the mean of their ranks). */
export function descendingAverageRanks(values: ArrayLike<number>): Float64Array {
  const order = Array.from({length: values.length}, (_, i) => i).sort((a, b) => values[b] - values[a])
  const ranks = new Float64Array(values.length)
  for (let start = 0; start < order.length; ) {
    let end = start
    while (end + 1 < order.length && values[order[end + 1]] === values[order[start]]) end++
    const average = (start + end) / 2
    for (let k = start; k <= end; k++) ranks[order[k]] = average
    start = end + 1
  }
  return ranks
}

export function rankKlLoss(similarities: tf.Tensor1D, labels: ArrayLike<number>, temperature = 0.05): tf.Scalar {
  checkLabels('rank-kl', similarities, labels)
  const n = labels.length
  if (n < 2) return zeroLoss(similarities)
  const ranks = descendingAverageRanks(labels)
  // Target distribution in float64, then handed to the backend as constants.
  const logits = Array.from(ranks, (r) => (n - 1 - r) / (n - 1) / temperature)
  const max = Math.max(...logits)
  const logNormaliser = max + Math.log(logits.reduce((a, v) => a + Math.exp(v - max), 0))
  const logTarget = logits.map((v) => v - logNormaliser)
  const target = logTarget.map(Math.exp)
  return tf.tidy(() => {
    const logPredicted = tf.logSoftmax(tf.div(similarities, temperature))
    const perItem = tf.mul(tf.tensor1d(target), tf.sub(tf.tensor1d(logTarget), logPredicted))
    return tf.div(tf.sum(perItem), n) as tf.Scalar
  })
}

/** Options of `rank-kl` (its registry entry's optionsSchema). */
export interface RankKlOptions {
  /** τ (default 0.05). */
  temperature?: number
}

export function create(options: RankKlOptions = {}): StsLoss {
  const temperature = options.temperature ?? 0.05
  return pairSimilarityLoss('rank-kl', (similarities, labels) => rankKlLoss(similarities, labels, temperature))
}
