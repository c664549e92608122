/** What `codiemb merge` reports (members of the ProgressEvent union in src/core/events.ts). */

/** Hashing the inputs' weight files, then writing merged or copied tensors one by one. */
export interface MergeProgressEvent {
  type: 'merge-progress'
  phase: 'hash' | 'merge'
  /** The file being hashed or the tensor just written. */
  item: string
  done: number
  total: number
}

/** Totals of a merge (merge.json's `summary`). */
export interface MergeSummary {
  tensors: number
  merged: number
  copied: number
  parameters: number
  mergedParameters: number
  /** Each checkpoint's weight averaged over all merged parameters (tensor means weighted by size). */
  meanWeights: number[]
  seconds: number
}

/** `codiemb merge` wrote the merged checkpoint. */
export interface MergeDoneEvent {
  type: 'done'
  command: 'merge'
  out: string
  summary: MergeSummary
}
