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
 * Cross-device negatives (`crossDeviceNegatives: true`, data-parallel runs; the paper's setup): each
 * rank gathers every rank's queries and passages (rank order; the concatenation keeps the layout, so
 * query i's positives stay at its own rows and the labels are offset by the rank's first row) and
 * computes L over the global batch. Gathered rows are constants, the local ones keep their gradient;
 * the differentiated value is W·L − (W−1)·sg(L) (value L, gradient W·∂L through the local rows), so
 * the trainer's average over the W ranks gives exactly ∂L/∂θ of one process holding the whole global
 * batch. Without a device group (one process, probes) it is the plain loss. STS losses stay local.
 *
 * Relations: with P=1, N=0 it is the usual in-batch-negatives InfoNCE; `mid-infonce` is the STS
 * counterpart on middle-layer embeddings.
 */
import * as tf from '@tensorflow/tfjs-core'
import {crossEntropyRows} from './similarity.js'
import type {DeviceGroup, IrEmbeddings, IrLoss} from './types.js'

export interface IrInfoNceOptions {
  temperature?: number
  positives?: number
  negatives?: number
  /** `auto`: the largest chunk that fits the device, resolved once when training starts (src/train/memory-plan.ts). */
  cache?: {chunkSize: number | 'auto'}
  /** Gather the other ranks' queries and passages as negatives (data-parallel runs). */
  crossDeviceNegatives?: boolean
}

/** The loss over every rank's rows, differentiable through this rank's (see the module comment). */
export function crossDeviceIrInfoNce(batch: IrEmbeddings, devices: DeviceGroup, temperature: number): tf.Scalar {
  return tf.tidy(() => {
    const withPeers = (local: tf.Tensor2D) => tf.concat(devices.allGather(local).map((g, r) => (r === devices.rank ? local : g)), 0) as tf.Tensor2D
    const full = irInfoNce(withPeers(batch.queries), withPeers(batch.passages), batch.positives, batch.negatives, temperature)
    const value = full.dataSync()[0]!
    return tf.sub(tf.mul(full, devices.worldSize), (devices.worldSize - 1) * value) as tf.Scalar
  })
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
    compute: (batch: IrEmbeddings) =>
      options.crossDeviceNegatives && batch.devices && batch.devices.worldSize > 1
        ? crossDeviceIrInfoNce(batch, batch.devices, temperature)
        : irInfoNce(batch.queries, batch.passages, batch.positives, batch.negatives, temperature),
  }
}
