/**
 * What the trainer needs from an encoder: the subset of src/model/encoder.ts's `Encoder` it calls.
 * Kept structural so the trainer is written against the agreed interface, not an implementation.
 */
import type * as tf from '@tensorflow/tfjs-core'

/** The fields of a token batch the trainer reads (the encoder's TokenBatch has more). */
export interface TokenBatchLike {
  batchSize: number
  seqLen: number
  /** Non-padding tokens per row. */
  lengths: number[]
}

export interface TrainableEncoder<B extends TokenBatchLike = TokenBatchLike> {
  readonly numLayers: number
  readonly hiddenSize: number
  /** Trainable parameters, keyed by checkpoint tensor name. */
  readonly variables: Map<string, tf.Variable>
  /** `prefixes[i]` is the instruction prefix already at the start of texts[i]; its tokens are left out of pooling. */
  tokenize(texts: string[], options: {maxLength?: number; prefixes?: string[]}): Promise<B>
  /** Optional: move tokenization to a worker thread until the returned function is called (undefined: already off the main thread). */
  startTokenizerWorker?(): Promise<(() => Promise<void>) | undefined>
  /**
   * Synchronous, so it can run inside tf.variableGrads. hiddenStates[0] is the embedding output, then
   * one per layer. `checkpointLayers`: recompute each layer in backward instead of keeping its
   * activations (same gradients, less memory; see src/tensor/checkpoint.ts).
   */
  forward(batch: B, options: {training: boolean; seed?: number; checkpointLayers?: boolean}): {lastHiddenState: tf.Tensor3D; hiddenStates: tf.Tensor3D[]}
  pool(hidden: tf.Tensor3D, batch: B, options?: {normalize?: boolean}): tf.Tensor2D
  /** Writes a sentence-transformers directory (atomically); extraFiles are written beside the model files. */
  save(dir: string, options?: {extraFiles?: Record<string, string | Uint8Array>}): Promise<void>
}
