/**
 * Sentence pooling over token hidden states [B, T, H] -> [B, H], as sentence-transformers' Pooling:
 *   cls            h[:, 0]
 *   mean           sum_t m_t h_t / max(sum_t m_t, 1e-9)
 *   last-token     h at the last attended position (found from the attention mask, so right or left
 *                  padding alike, never by searching for the pad id, which decoders also append)
 *   weighted-mean  sum_t w_t h_t / sum_t w_t with w_t = c_t m_t, c_t = a_1 + … + a_t  (SGPT position
 *                  weights 1..n over the attended tokens in order, whatever the padding side)
 * where m is the batch's pooling mask (attention mask minus any instruction prefix, see tokenizer.ts)
 * and a the attention mask.
 * L2 normalisation divides by max(||x||, 1e-12), as torch.nn.functional.normalize.
 */
import * as tf from '@tensorflow/tfjs-core'
import type {TokenBatch} from './tokenizer/tokenizer.js'

export const POOLING_MODES = ['cls', 'mean', 'last-token', 'weighted-mean'] as const
export type PoolingMode = (typeof POOLING_MODES)[number]

export function isPoolingMode(x: unknown): x is PoolingMode {
  return typeof x === 'string' && (POOLING_MODES as readonly string[]).includes(x)
}

/** Weights [B, T] (already normalised to sum 1 per row) for the weighted pooling modes. */
function poolingWeights(mode: Exclude<PoolingMode, 'cls'>, batch: TokenBatch): Float32Array {
  const {batchSize: B, seqLen: T, poolMask, attentionMask} = batch
  const w = new Float32Array(B * T)
  for (let b = 0; b < B; b++) {
    const base = b * T
    if (mode === 'last-token') {
      let last = T - 1
      while (last >= 0 && !attentionMask[base + last]) last--
      if (last >= 0) w[base + last] = 1
      continue
    }
    let sum = 0
    let position = 0
    for (let t = 0; t < T; t++) {
      if (attentionMask[base + t]) position++
      const v = mode === 'mean' ? poolMask[base + t]! : position * poolMask[base + t]!
      w[base + t] = v
      sum += v
    }
    const inv = 1 / Math.max(sum, 1e-9)
    for (let t = 0; t < T; t++) w[base + t]! *= inv
  }
  return w
}

/** Pools hidden states (call inside tf.tidy / tf.variableGrads; differentiable w.r.t. hidden). */
export function poolHidden(hidden: tf.Tensor3D, batch: TokenBatch, mode: PoolingMode, normalize: boolean): tf.Tensor2D {
  const [B, T, H] = hidden.shape
  if (B !== batch.batchSize || T !== batch.seqLen) {
    throw new Error(`hidden states [${hidden.shape.join(', ')}] do not match the token batch [${batch.batchSize}, ${batch.seqLen}]`)
  }
  let pooled: tf.Tensor2D
  if (mode === 'cls') {
    pooled = tf.reshape(tf.slice(hidden, [0, 0, 0], [B, 1, H]), [B, H])
  } else {
    // One batched matmul: [B, 1, T] x [B, T, H] -> [B, 1, H].
    const w = tf.tensor3d(poolingWeights(mode, batch), [B, 1, T])
    pooled = tf.reshape(tf.matMul(w, hidden), [B, H])
  }
  return normalize ? l2Normalize(pooled) : pooled
}

export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  const norm = tf.sqrt(tf.sum(tf.square(x), 1, true))
  return tf.div(x, tf.maximum(norm, 1e-12))
}
