/**
 * Collectives across the processes (ranks) of a data-parallel run: the contract the trainer codes
 * against. process-group.ts opens the one implementation (PyTorch's c10d through the torch addon).
 *
 * Order: every rank must issue the same collectives in the same order (c10d matches them by
 * sequence); the implementation queues asynchronous calls so they start in call order.
 */
import type * as tf from '@tensorflow/tfjs-core'

export interface CollectiveStats {
  collectives: number
  bytesReduced: number
  bytesBroadcast: number
  bytesGathered: number
}

export interface Collectives {
  readonly rank: number
  readonly worldSize: number
  readonly localRank: number
  /** Σ (sum) or mean (avg) over the ranks of each tensor; new tensors, the inputs are untouched. */
  allReduce(tensors: tf.Tensor[], op: 'sum' | 'avg'): Promise<tf.Tensor[]>
  /** Rank `root`'s values of each tensor, on every rank (new tensors). */
  broadcast(tensors: tf.Tensor[], root?: number): Promise<tf.Tensor[]>
  /**
   * Every rank's `t`, in rank order, blocking, outside any gradient tape (the results are constants):
   * for losses computed inside a gradient computation. First dimensions may differ across ranks.
   */
  allGatherSync(t: tf.Tensor): tf.Tensor[]
  /** Waits until every rank got here. */
  barrier(): Promise<void>
  stats(): CollectiveStats
  /** Leaves the group. */
  close(): void
}
