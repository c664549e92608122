/** Helpers shared by the STS losses: pair similarities, the loss object, masking and stable cross-entropy. */
import * as tf from '@tensorflow/tfjs-core'
import type {StsEmbeddings, StsLoss} from './types.js'

/** Row-wise dot products of two [n, d] matrices of unit vectors: the cosine similarity of each pair. */
export function pairSimilarities(left: tf.Tensor2D, right: tf.Tensor2D): tf.Tensor1D {
  return tf.sum(tf.mul(left, right), 1) as tf.Tensor1D
}

/**
 * An STS loss as the trainer calls it: `compute` runs in a tidy scope, so only the loss value
 * outlives a batch. `needsMiddleLayer` asks the trainer to pool the middle layer as well.
 */
export function stsLoss(name: string, needsMiddleLayer: boolean, compute: (batch: StsEmbeddings) => tf.Scalar): StsLoss {
  return {task: 'sts', name, needsMiddleLayer, compute: (batch: StsEmbeddings) => tf.tidy(() => compute(batch))}
}

/**
 * An STS loss of the final layer alone: `score` sees the similarity s_i = left_i·right_i of each
 * pair (see `pairSimilarities`) and the gold labels.
 */
export function pairSimilarityLoss(name: string, score: (similarities: tf.Tensor1D, labels: ArrayLike<number>) => tf.Scalar): StsLoss {
  return stsLoss(name, false, (batch) => score(pairSimilarities(batch.left, batch.right), batch.labels))
}

/** The batch's middle-layer embeddings, which `loss` reads; fails naming the loss when the trainer pooled none. */
export function middleLayer(batch: StsEmbeddings, loss: string): {left: tf.Tensor2D; right: tf.Tensor2D} {
  if (!batch.leftMiddle || !batch.rightMiddle) throw new Error(`${loss}: the batch has no middle-layer embeddings`)
  return {left: batch.leftMiddle, right: batch.rightMiddle}
}

/**
 * A loss of 0 that stays connected to `inputs` (its gradient to them is 0), for a batch that gives a
 * loss nothing to learn from (constant labels, no anchors): the trainer still differentiates it.
 */
export function zeroLoss(...inputs: tf.Tensor[]): tf.Scalar {
  return tf.tidy(() => inputs.map((t) => tf.sum(tf.mul(t, 0))).reduce((total, zero) => tf.add(total, zero)) as tf.Scalar)
}

/** A finite stand-in for −∞ in masked log-sum-exps (exp underflows to exactly 0 in float32). */
export const MASKED_LOGIT = -1e9

/** Checks that the similarity vector and the labels describe the same pairs. */
export function checkLabels(loss: string, similarities: tf.Tensor1D, labels: ArrayLike<number>): void {
  if (similarities.shape[0] !== labels.length)
    throw new Error(`${loss}: ${similarities.shape[0]} similarities but ${labels.length} labels`)
}

/**
 * log(1 + eˣ), elementwise, accurate in float32 at both ends, with gradient σ(x).
 *
 * Cross-entropy against one target, −log(e^{x_t} / Σ_j e^{x_j}), equals softplus(LSE_{j≠t}(x_j − x_t)).
 * Written that way its gradient is σ(·) directly instead of softmax − 1, which loses most of its
 * significant digits in float32 when the model is confident (τ = 0.02 makes logits reach ±50).
 */
export const softplus: (x: tf.Tensor) => tf.Tensor = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const x = args[0] as tf.Tensor
  ;(args[1] as tf.GradSaveFunc)([x])
  // max(x, 0) + log1p(e^{−|x|}) never overflows and keeps full precision for very negative x.
  const value = tf.add(tf.relu(x), tf.log1p(tf.exp(tf.neg(tf.abs(x)))))
  return {value, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(dy, tf.sigmoid(saved[0]))}
}) as (x: tf.Tensor) => tf.Tensor

/**
 * Per-row cross-entropy of `logits` [m, c] against the target column `targets[r]` of each row,
 * computed as softplus(LSE_{j≠t}(x_j − x_t)) (see `softplus`). Returns [m].
 */
export function crossEntropyRows(logits: tf.Tensor2D, targets: number[]): tf.Tensor1D {
  return tf.tidy(() => {
    const [rows, columns] = logits.shape
    const targetMask = new Float32Array(rows * columns)
    for (let r = 0; r < rows; r++) targetMask[r * columns + targets[r]] = 1
    const isTarget = tf.tensor2d(targetMask, [rows, columns])
    const own = tf.sum(tf.mul(logits, isTarget), 1, true) // [m, 1]
    const others = tf.add(tf.sub(logits, own), tf.mul(isTarget, MASKED_LOGIT))
    return softplus(tf.logSumExp(others, 1)) as tf.Tensor1D
  })
}
