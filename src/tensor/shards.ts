/**
 * Encoding in parallel across the ranks of a job (`embed`, `eval`, `mine` under --nproc-per-node or
 * torchrun): every rank runs the same command over the same inputs; the texts are cut into the
 * slices a single process would encode one at a time, slice i is encoded by rank i mod W, and after
 * each round of W slices every rank receives every slice's vectors (an all-gather), in slice order.
 * The vectors are thus those of the single-process run: each slice is encoded by the same call on
 * the same texts (the encoder sorts and batches within a slice only).
 *
 * A block travels as one float32 tensor [rows, dim, extraLow, extraHigh, …rows×dim values] so that a
 * rank without a slice in the last round still sends a non-empty tensor (rows 0) and the receivers
 * learn each block's shape from the block itself; the all-gather pads unequal lengths and cuts them.
 * `extra` is an integer counter carried along (embed: the tokens of the slice), split in two 20-bit
 * halves so float32 holds it exactly.
 */
import * as tf from '@tensorflow/tfjs-core'
import type {Collectives} from './collectives.js'

export interface VectorBlock {
  rows: number
  dim: number
  /** Row-major rows × dim. */
  vectors: Float32Array
  /** A non-negative integer < 2^40 that travels with the block (e.g. its token count). */
  extra?: number
}

/** The ranks of a job seen by an encoding loop. */
export interface ShardGroup {
  readonly rank: number
  readonly worldSize: number
  /** Every rank's block of this round, in rank order (undefined for a rank that had none). Every rank must call it. */
  gather(block: VectorBlock | undefined): Promise<(VectorBlock | undefined)[]>
  /** Rank 0's integers (|v| < 2^31), on every rank; the other ranks pass as many (ignored) values. */
  broadcastIntegers(values: number[]): Promise<number[]>
  /** Rank 0's `length` floats, on every rank; the other ranks pass undefined. */
  broadcastFloats(values: Float32Array | undefined, length: number): Promise<Float32Array>
}

const HALF = 2 ** 20

/** A ShardGroup over the job's collectives (tensors on the active backend, which must be the collectives'). */
export function shardGroup(collectives: Collectives): ShardGroup {
  return {
    rank: collectives.rank,
    worldSize: collectives.worldSize,
    async gather(block) {
      const extra = block?.extra ?? 0
      if (!Number.isInteger(extra) || extra < 0 || extra >= HALF * HALF) throw new Error(`gather: block extra ${extra} is not an integer in [0, 2^40)`)
      const packed = new Float32Array(4 + (block ? block.rows * block.dim : 0))
      if (block) {
        if (block.vectors.length !== block.rows * block.dim) throw new Error(`gather: block of ${block.rows} × ${block.dim} has ${block.vectors.length} values`)
        packed.set([block.rows, block.dim, extra % HALF, Math.floor(extra / HALF)])
        packed.set(block.vectors, 4)
      }
      const local = tf.tensor1d(packed, 'float32')
      let parts: tf.Tensor[] = []
      try {
        parts = collectives.allGatherSync(local)
        return parts.map((part) => {
          const values = part.dataSync() as Float32Array
          const [rows, dim, low, high] = values
          if (!rows) return undefined
          return {rows: rows!, dim: dim!, extra: low! + high! * HALF, vectors: values.slice(4, 4 + rows! * dim!)}
        })
      } finally {
        local.dispose()
        tf.dispose(parts)
      }
    },
    async broadcastIntegers(values) {
      const local = tf.tensor1d(values, 'int32')
      const [out] = await collectives.broadcast([local], 0)
      try {
        return Array.from(out!.dataSync())
      } finally {
        local.dispose()
        out!.dispose()
      }
    },
    async broadcastFloats(values, length) {
      const local = tf.tensor1d(values ?? new Float32Array(length), 'float32')
      const [out] = await collectives.broadcast([local], 0)
      try {
        return out!.dataSync() as Float32Array
      } finally {
        local.dispose()
        out!.dispose()
      }
    },
  }
}
