/**
 * `cosine-mse` — sentence-transformers' CosineSimilarityLoss as a codiemb STS loss.
 *
 * Inputs: an STS batch of n pairs — `left`, `right` ([n, d] L2-normalised embeddings) and gold
 * `labels` y_i in [0, 1]. With s_i = left_i · right_i (cosine similarity of unit vectors):
 *
 *   L = scale · (1/n) Σ_i (s_i − y_i)²
 *
 * Options: `scale` (default 1) multiplies the loss. Relations: unlike codiemb's order-aware losses
 * (pearson, rank-kl, pro) it asks for the absolute values of the similarities to match the labels,
 * which is why CoDiEmb moved away from it; it remains a useful baseline.
 */
import * as tf from '@tensorflow/tfjs-core'
import type {StsEmbeddings, StsLoss} from 'codiemb'

/** Options of `cosine-mse` (validated against its entry's optionsSchema before `create` sees them). */
export interface CosineMseOptions {
  scale?: number
}

/** The loss for one batch: a scalar, differentiable with respect to `left` and `right`. */
export function cosineMse(left: tf.Tensor2D, right: tf.Tensor2D, labels: ArrayLike<number>, scale = 1): tf.Scalar {
  if (left.shape[0] !== labels.length) throw new Error(`cosine-mse: ${left.shape[0]} pairs but ${labels.length} labels`)
  return tf.tidy(() => {
    const similarities = tf.sum(tf.mul(left, right), 1)
    const diff = tf.sub(similarities, tf.tensor1d(Float32Array.from(labels)))
    return tf.mul(tf.mean(tf.square(diff)), scale) as tf.Scalar
  })
}

/** The LossModule contract: `create(options)` returns the loss object the trainer calls. */
export function create(options: CosineMseOptions = {}): StsLoss {
  const scale = options.scale ?? 1
  return {
    task: 'sts',
    name: 'cosine-mse',
    needsMiddleLayer: false,
    compute: (batch: StsEmbeddings) => cosineMse(batch.left, batch.right, batch.labels, scale),
  }
}
