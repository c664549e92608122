/**
 * `mid-infonce` — InfoNCE on middle-layer embeddings of STS pairs (CoDiEmb's STS contrastive term).
 *
 * Inputs: n pairs; a_i, b_i are the pooled, L2-normalised *middle-layer* embeddings of text1 and
 * text2 (StsEmbeddings.leftMiddle/rightMiddle; the trainer pools hidden state ⌊layers/2⌋), y_i the
 * gold label normalised to [0,1].
 * Formula: anchors A = { i : y_i ≥ threshold }; candidates = every second text in the batch;
 *   L = (1/|A|) Σ_{i∈A} −log( exp(a_i·b_i/τ) / Σ_j exp(a_i·b_j/τ) ),   L = 0 when A = ∅.
 * Options: temperature τ (paper 0.02), threshold (default 1.0 on [0,1] labels: only pairs marked
 * as fully equivalent are positives). Relations: the STS counterpart of `ir-infonce`; applying it to
 * a middle layer shapes intermediate representations without fighting the final-layer ranking
 * losses. Weight 1 in CoDiEmb's STS combination.
 */
import * as tf from '@tensorflow/tfjs-core'
import {crossEntropyRows, middleLayer, stsLoss, zeroLoss} from './similarity.js'
import type {StsLoss} from './types.js'

export function midInfoNceLoss(left: tf.Tensor2D, right: tf.Tensor2D, labels: ArrayLike<number>, temperature = 0.02, threshold = 1.0): tf.Scalar {
  const n = left.shape[0]
  if (right.shape[0] !== n || labels.length !== n)
    throw new Error(`mid-infonce: ${n} left rows, ${right.shape[0]} right rows and ${labels.length} labels must agree`)
  const anchors: number[] = []
  for (let i = 0; i < n; i++) if (labels[i] >= threshold) anchors.push(i)
  if (anchors.length === 0) return zeroLoss(left, right)
  return tf.tidy(() => {
    const anchorIndex = tf.tensor1d(anchors, 'int32')
    const anchorRows = tf.div(tf.gather(left, anchorIndex), temperature) // [m, d]
    const logits = tf.matMul(anchorRows, right, false, true) // [m, n]
    return tf.mean(crossEntropyRows(logits as tf.Tensor2D, anchors)) as tf.Scalar
  })
}

/** Options of `mid-infonce` (its registry entry's optionsSchema). */
export interface MidInfoNceOptions {
  /** τ (default 0.02). */
  temperature?: number
  /** Pairs whose label (in [0,1]) reaches it are anchors (default 1.0). */
  threshold?: number
}

export function create(options: MidInfoNceOptions = {}): StsLoss {
  const temperature = options.temperature ?? 0.02
  const threshold = options.threshold ?? 1.0
  return stsLoss('mid-infonce', true, (batch) => {
    const {left, right} = middleLayer(batch, 'mid-infonce')
    return midInfoNceLoss(left, right, batch.labels, temperature, threshold)
  })
}
