/**
 * The sampler contract. A sampler decides, epoch by epoch, which rows of which datasets form each
 * training batch. It never sees texts or tensors, only dataset sizes, so `codiemb train --dry-run`
 * can print the whole plan without loading a model.
 *
 * Determinism and resume: an epoch's plan is a pure function of the sampler's RNG state at the
 * start of that epoch. SamplerState records that state plus the position inside the epoch, so a
 * resumed run replays exactly the batches an uninterrupted run would have produced.
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

export interface Sampler {
  readonly name: string
  /** Every batch of the current epoch, in order (deterministic given the state). */
  epochPlan(): SamplerBatch[]
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
