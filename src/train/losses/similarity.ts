/** Helpers shared by the STS losses. */
import * as tf from '@tensorflow/tfjs-core'

/** Row-wise dot products of two [n, d] matrices of unit vectors: the cosine similarity of each pair. */
export function pairSimilarities(left: tf.Tensor2D, right: tf.Tensor2D): tf.Tensor1D {
  return tf.sum(tf.mul(left, right), 1) as tf.Tensor1D
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
