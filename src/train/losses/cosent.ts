/**
 * `cosent` — the CoSENT ranking loss (baseline for ablations; not part of CoDiEmb's objective).
 *
 * Inputs: n pairs with cosine similarity s_i and gold label y_i.
 * Formula: L = log( 1 + Σ_{(i,j): y_i > y_j} exp( λ·(s_j − s_i) ) ), scale λ (default 20).
 * Every pair of pairs whose labels are ordered contributes a term that is small when the
 * higher-labelled pair has the higher similarity. L = 0 when all labels tie.
 * Options: scale λ. Relations: `pro` is the label-gap-weighted, per-anchor variant.
 */
import * as tf from '@tensorflow/tfjs-core'
import {MASKED_LOGIT, checkLabels, pairSimilarityLoss, softplus} from './similarity.js'
import type {StsLoss} from './types.js'

export function cosentLoss(similarities: tf.Tensor1D, labels: ArrayLike<number>, scale = 20): tf.Scalar {
  checkLabels('cosent', similarities, labels)
  const n = labels.length
  const mask = new Float32Array(n * n).fill(MASKED_LOGIT)
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (labels[i] > labels[j]) mask[i * n + j] = 0
  return tf.tidy(() => {
    const scaled = tf.mul(similarities, scale)
    // differences[i][j] = λ(s_j − s_i), kept only where y_i > y_j
    const differences = tf.add(tf.sub(tf.reshape(scaled, [1, n]), tf.reshape(scaled, [n, 1])), tf.tensor2d(mask, [n, n]))
    return softplus(tf.logSumExp(tf.reshape(differences, [n * n]))) as tf.Scalar
  })
}

/** Options of `cosent` (its registry entry's optionsSchema). */
export interface CosentOptions {
  /** λ (default 20). */
  scale?: number
}

export function create(options: CosentOptions = {}): StsLoss {
  const scale = options.scale ?? 20
  return pairSimilarityLoss('cosent', (similarities, labels) => cosentLoss(similarities, labels, scale))
}
