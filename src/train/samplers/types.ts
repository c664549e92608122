/**
 * The sampler contract. A sampler decides, epoch by epoch, which rows of which datasets form each
 * training batch. It never sees texts or tensors, only dataset sizes, so `codiemb train --dry-run`
 * can print the whole plan without loading a model.
 *
 * Determinism and resume: an epoch's plan is a pure function of the sampler's RNG state at the
 * start of that epoch. SamplerState records that state plus the position inside the epoch, so a
 * resumed run replays exactly the batches an uninterrupted run would have produced.
 *
 * Memory: a plan over millions of rows must not be held as JS arrays of row indices (~20 bytes a
 * row). The built-in samplers hold an epoch compactly (EpochBatches: an Int32Array of row indices
 * per dataset, 4 bytes a row, and one entry per batch) and hand out one batch's rows at a time; they
 * count an epoch's batches in closed form (`batchCount`). Both are optional: a sampler that only
 * implements `epochPlan()` still works (outline.ts falls back to it).
 */
import type {TaskKind} from '../../core/task-kind.js'

export type {TaskKind}

export interface SamplerDataset {
  /** Dataset name (for plans and logs). */
  name: string
  task: TaskKind
  /** Usable rows (after the trainer dropped rows the loss cannot use). */
  size: number
}

/** A slice of one dataset inside a batch. */
export interface BatchPart {
  dataset: number
  rows: number[]
}

/** One training batch: a single part for single-dataset samplers, several for `mixed`. */
export interface SamplerBatch {
  parts: BatchPart[]
}

export interface SamplerState {
  /** Epoch in progress (0-based). */
  epoch: number
  /** Batches of this epoch already handed out. */
  position: number
  /** RNG state at the start of `epoch`. */
  epochRng: number
}

/** A part's dataset and row count, without its rows. */
export interface PartSize {
  dataset: number
  size: number
}

/** One epoch's batches held compactly: batch `i` built on demand. */
export interface EpochBatches {
  /** Batches in the epoch. */
  readonly length: number
  /** Batch `i` (0 ≤ i < length) with its rows as plain arrays (a new object per call). */
  batch(i: number): SamplerBatch
  /** Batch `i`'s parts (dataset and row count, in part order) without building its rows. */
  parts(i: number): PartSize[]
}

export interface Sampler {
  readonly name: string
  /**
   * Every batch of the current epoch, in order (deterministic given the state), as plain arrays.
   * For a large dataset this is big (~20 bytes a row): the trainer uses `epochBatches`/`batchCount`
   * where a sampler has them.
   */
  epochPlan(): SamplerBatch[]
  /** Optional: the current epoch's plan held compactly (the same batches as `epochPlan()`). */
  epochBatches?(): EpochBatches
  /** Optional: the number of batches of the current epoch (`epochPlan().length`) without building the plan. */
  batchCount?(): number
  /** The next batch, or undefined at the end of the epoch (call `nextEpoch()` then). */
  next(): SamplerBatch | undefined
  /** Moves to the start of the following epoch. */
  nextEpoch(): void
  getState(): SamplerState
  setState(state: SamplerState): void
  /** Batch size used for a task (the largest a batch of that task can be). */
  batchSize(task: TaskKind): number
}

export interface SamplerModule {
  create(datasets: SamplerDataset[], options: Record<string, unknown>, seed: number): Sampler
}
