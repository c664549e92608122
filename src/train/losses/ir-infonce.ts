/**
 * `ir-infonce` — multi-positive InfoNCE with hard and in-batch negatives (CoDiEmb's IR objective).
 *
 * Inputs (see IrEmbeddings): B normalised query embeddings q_i and B·(P+N) normalised passage
 * embeddings, per query P positives p_{i,1..P} followed by N hard negatives n_{i,1..N}.
 *
 * Formula: for each positive slot j the candidate set is
 *   C_j = { p_{k,j} : k = 1..B } ∪ { n_{k,m} : k = 1..B, m = 1..N }
 * (every query's j-th positive and every query's hard negatives), and
 *   L_j = (1/B) Σ_i −log( exp(q_i·p_{i,j}/τ) / Σ_{c∈C_j} exp(q_i·c/τ) )
 *   L   = (1/P) Σ_j L_j
 * So the in-batch negatives of query i are the other queries' positives (same slot) and every
 * negative in the batch; query i's own other positives are never in its denominator.
 *
 * Options: temperature τ (paper 0.02), positives P (paper 2), negatives N (paper 4), and
 * cache {chunkSize}: train this loss with GradCache (the trainer embeds the batch in chunks of
 * chunkSize texts without keeping activations, takes ∂L/∂embeddings, then re-runs each chunk with
 * gradients); chunkSize `auto` picks the largest chunk whose step fits the device. The loss value is
 * the same with or without the cache.
 *
 * Relations: with P=1, N=0 it is the usual in-batch-negatives InfoNCE; `mid-infonce` is the STS
 * counterpart on middle-layer embeddings. Accepts embeddings gathered from several devices (the
 * concatenation keeps the layout).
 */
import * as tf from '@tensorflow/tfjs-core'
import {crossEntropyRows} from './similarity.js'
import type {IrEmbeddings, IrLoss} from './types.js'

export interface IrInfoNceOptions {
  temperature?: number
  positives?: number
  negatives?: number
  /** `auto`: the largest chunk that fits the device, resolved once when training starts (src/train/memory-plan.ts). */
  cache?: {chunkSize: number | 'auto'}
}

/** The loss value for one batch (a scalar tensor; differentiable w.r.t. queries and passages). */
export function irInfoNce(queries: tf.Tensor2D, passages: tf.Tensor2D, positives: number, negatives: number, temperature: number): tf.Scalar {
  return tf.tidy(() => {
    const batch = queries.shape[0]
    const group = positives + negatives
    if (passages.shape[0] !== batch * group)
      throw new Error(
        `ir-infonce: expected ${batch}·(${positives}+${negatives}) = ${batch * group} passage rows for ${batch} queries, got ${passages.shape[0]}`,
      )
    const dim = queries.shape[1]
    const grouped = tf.reshape(passages, [batch, group, dim])
    const scaledQueries = tf.div(queries, temperature)
    // Similarities to every hard negative in the batch: shared by all positive slots.
    const negativeLogits =
      negatives > 0
        ? tf.matMul(scaledQueries, tf.reshape(tf.slice(grouped, [0, positives, 0], [batch, negatives, dim]), [batch * negatives, dim]), false, true)
        : undefined
    const diagonal = Array.from({length: batch}, (_, i) => i)
    let total: tf.Tensor = tf.scalar(0)
    for (let slot = 0; slot < positives; slot++) {
      const slotPositives = tf.reshape(tf.slice(grouped, [0, slot, 0], [batch, 1, dim]), [batch, dim])
      const positiveLogits = tf.matMul(scaledQueries, slotPositives, false, true) // [B, B]
      const logits = negativeLogits ? tf.concat([positiveLogits, negativeLogits], 1) : positiveLogits
      total = tf.add(total, tf.mean(crossEntropyRows(logits as tf.Tensor2D, diagonal)))
    }
    return tf.div(total, positives) as tf.Scalar
  })
}

export function create(options: IrInfoNceOptions = {}): IrLoss {
  const temperature = options.temperature ?? 0.02
  const positives = options.positives ?? 2
  const negatives = options.negatives ?? 4
  return {
    task: 'ir',
    name: 'ir-infonce',
    needsMiddleLayer: false,
    positives,
    negatives,
    cacheChunkSize: options.cache?.chunkSize,
    compute: (batch: IrEmbeddings) => irInfoNce(batch.queries, batch.passages, batch.positives, batch.negatives, temperature),
  }
}
