/**
 * GradCache (Gao et al., "Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup",
 * 2021) for IR batch parts, and the row slicing it chunks token batches with.
 *
 * The InfoNCE loss couples every query with every passage of the batch, so the batch cannot simply
 * be split; but L depends on the parameters θ only through the embeddings e_i, hence
 *   ∂L/∂θ = Σ_i (∂L/∂e_i) · ∂e_i/∂θ = ∂/∂θ Σ_i sg(∂L/∂e_i) · e_i
 * (sg: held constant). GradCache computes every e_i chunk by chunk without a tape, ∂L/∂e on the small
 * [rows, hidden] embedding matrices, then re-embeds each chunk with a tape and the same dropout seed
 * and back-propagates the surrogate Σ sg(∂L/∂e) · e. Memory is bounded by one chunk's activations;
 * the result equals the direct gradient (up to summation order).
 */
import * as tf from '@tensorflow/tfjs-core'
import type {PreparedIrPart} from './batch.js'
import {accumulateGradients} from './gradients.js'
import type {ComponentSink, IrObjective} from './objective.js'
import type {TokenBatchLike} from './types.js'
import type {DeviceGroup} from './losses/types.js'

/** What GradCache needs from the model being trained. */
export interface ChunkModel<B> {
  /** Pooled, L2-normalised embeddings of a token batch in training mode (dropout masks from `seed`). */
  embedChunk(batch: B, seed: number): tf.Tensor2D
  /** The value of `f` and its gradients with respect to the trainable parameters, by parameter name. */
  parameterGradients(f: () => tf.Scalar): {value: tf.Scalar; grads: Map<string, tf.Tensor>}
  /** The ranks of a data-parallel run (losses may gather their embeddings). */
  readonly devices?: DeviceGroup
}

interface Chunk<B> {
  batch: B
  /** Dropout seed of the chunk: the same in the embedding pass and the backward pass. */
  seed: number
}

/**
 * The IR objective of `part` and its parameter gradients, computed by GradCache with chunks of at
 * most `chunkSize` rows. Queries use dropout seeds derived from seed ^ 1, passages from seed ^ 2 (as
 * the direct computation), one per chunk.
 */
export function gradCacheIr<B extends TokenBatchLike>(
  model: ChunkModel<B>,
  objective: IrObjective,
  part: PreparedIrPart<B>,
  seed: number,
  chunkSize: number,
  sink?: ComponentSink,
): {value: number; grads: Map<string, tf.Tensor>} {
  const queryChunks = seededChunks(part.queries, chunkSize, seed ^ 0x1)
  const passageChunks = seededChunks(part.passages, chunkSize, seed ^ 0x2)
  // (1) Embeddings of every chunk, no tape; each chunk in its own scope, so only its embeddings
  // outlive it (not its hidden states), and memory stays bounded by one chunk.
  const embedAll = (chunks: Chunk<B>[]) => {
    const parts = chunks.map((c) => tf.tidy(() => model.embedChunk(c.batch, c.seed)))
    const all = tf.concat(parts, 0) as tf.Tensor2D
    tf.dispose(parts)
    return all
  }
  const queries = embedAll(queryChunks)
  const passages = embedAll(passageChunks)
  // (2) The loss and ∂L/∂e for queries and passages.
  const {value, grads} = tf.valueAndGrads((q: tf.Tensor, p: tf.Tensor) =>
    objective.compute({queries: q as tf.Tensor2D, passages: p as tf.Tensor2D, positives: part.texts.positives, negatives: part.texts.negatives, ...(model.devices ? {devices: model.devices} : {})}, sink),
  )([queries, passages])
  tf.dispose([queries, passages])
  // (3) Per chunk: re-embed with a tape and back-propagate Σ e · sg(∂L/∂e) over the chunk's rows.
  const total = new Map<string, tf.Tensor>()
  const backward = (chunks: Chunk<B>[], embeddingGrads: tf.Tensor) => {
    let offset = 0
    for (const {batch, seed: chunkSeed} of chunks) {
      const rows = batch.batchSize
      const upstream = tf.slice(embeddingGrads, [offset, 0], [rows, embeddingGrads.shape[1]!])
      offset += rows
      const surrogate = model.parameterGradients(() => tf.sum(tf.mul(model.embedChunk(batch, chunkSeed), upstream)) as tf.Scalar)
      surrogate.value.dispose()
      upstream.dispose()
      accumulateGradients(total, surrogate.grads)
    }
  }
  backward(queryChunks, grads[0])
  backward(passageChunks, grads[1])
  const v = value.dataSync()[0]
  tf.dispose([value, ...grads])
  return {value: v, grads: total}
}

/** The chunks of a batch, chunk c seeded (baseSeed + (c+1)·0x165667b1) mod 2^32. */
function seededChunks<B extends TokenBatchLike>(batch: B, chunkSize: number, baseSeed: number): Chunk<B>[] {
  return sliceBatch(batch, chunkSize).map((chunk, c) => ({batch: chunk, seed: (baseSeed + Math.imul(c + 1, 0x165667b1)) >>> 0}))
}

/** Splits a token batch row-wise into chunks (views over the typed arrays, no copies of text). */
export function sliceBatch<B extends TokenBatchLike>(batch: B, chunkSize: number): B[] {
  if (batch.batchSize <= chunkSize) return [batch]
  const out: B[] = []
  for (let start = 0; start < batch.batchSize; start += chunkSize) out.push(sliceRows(batch, start, Math.min(batch.batchSize, start + chunkSize)))
  return out
}

/** Rows [start, end) of a token batch: every per-token array is sliced by rows, per-row arrays by index. */
export function sliceRows<B extends TokenBatchLike>(batch: B, start: number, end: number): B {
  const rows = batch.batchSize
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(batch)) {
    if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
      const typed = value as unknown as {length: number; subarray(a: number, b: number): unknown}
      const perRow = typed.length / rows
      out[key] = typed.subarray(start * perRow, end * perRow)
    } else if (Array.isArray(value) && value.length === rows) out[key] = value.slice(start, end)
    else out[key] = value
  }
  out.batchSize = end - start
  return out as B
}
