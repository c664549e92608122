/**
 * Non-finite numbers in training: finding them, and saying where they came from.
 *
 * A NaN or ±Infinity in a loss or a gradient, once applied, turns every weight it reaches into NaN,
 * and every later step and checkpoint with it. The trainer therefore checks each batch part's loss
 * and gradients before they are accumulated, and the weights after each update (trainer.ts). What
 * happens on a hit is the `onNonFinite` setting: `stop` (the default) ends the run with a
 * NonFiniteError naming the step, task, dataset and file rows and the last good checkpoint;
 * `skip-batch` leaves the batch out of the step and reports a `warning` event. Weights made
 * non-finite by an update always stop the run: they are in memory already, and no checkpoint is
 * written from them.
 */
import * as tf from '@tensorflow/tfjs-core'
import {ExecutionError} from '../core/errors.js'
import type {WarningEvent} from '../core/events.js'
import type {PreparedBatch} from './batch.js'
import {type TrainingDataset, fileRowOf} from './data.js'

/** What the trainer does when a batch's loss or gradient is not finite (train.onNonFinite). */
export type OnNonFinite = 'stop' | 'skip-batch'

/** Training produced a NaN or infinite loss, gradient or weight (exit code 1: the run failed, the request was fine). */
export class NonFiniteError extends ExecutionError {
  override name = 'NonFiniteError'
}

/**
 * The name of the first tensor of `tensors` that holds a NaN or ±Infinity, or undefined when all are
 * finite. Σ(x · 0) is 0 exactly when every x is finite (NaN · 0 and ±Infinity · 0 are NaN), so one
 * multiply, one sum per tensor and a single read-back answer for all of them.
 */
export function firstNonFinite(tensors: Map<string, tf.Tensor>): string | undefined {
  if (tensors.size === 0) return undefined
  const names = [...tensors.keys()]
  const flags = tf.tidy(() => tf.stack(names.map((name) => tf.sum(tf.mul(tensors.get(name)!, 0)))))
  const values = flags.dataSync()
  flags.dispose()
  const index = values.findIndex((v) => v !== 0)
  return index < 0 ? undefined : names[index]
}

/** Rows listed in full in a message; longer lists are cut with their count. */
const LISTED_ROWS = 20

/** "3, 7, 9" or "3, 7, … (64 rows)". */
export function rowList(rows: number[]): string {
  if (rows.length <= LISTED_ROWS) return rows.join(', ')
  return `${rows.slice(0, LISTED_ROWS).join(', ')}, … (${rows.length} rows)`
}

/** Where a non-finite number came from: the batch part of a step. */
export interface NonFiniteSite {
  step: number
  totalSteps: number
  epoch: number
  /** The batch's position within its epoch. */
  batch: number
  task: 'ir' | 'sts'
  dataset: string
  path: string
  /** The part's rows, as row numbers in the file (0-based). */
  rows: number[]
  /** "loss (NaN)" or "gradient of encoder.layer.0.output.dense.weight". */
  what: string
}

export function describeSite(site: NonFiniteSite): string {
  return (
    `non-finite ${site.what} at step ${site.step} of ${site.totalSteps} (epoch ${site.epoch + 1}, batch ${site.batch} of the epoch): ` +
    `task ${site.task}, dataset ${site.dataset} (${site.path}), file rows ${rowList(site.rows)} (numbered from 0)`
  )
}

/** What the stop message says about checkpoints: where the last good one is, or that there is none. */
export function lastCheckpointText(last: {path: string; step: number} | undefined): string {
  return last
    ? `The last good checkpoint is ${last.path} (step ${last.step}); resume from it with --resume once the cause is fixed, or set train.onNonFinite: skip-batch to leave such batches out.`
    : 'No checkpoint was written before this step, so nothing was saved; set train.onNonFinite: skip-batch to leave such batches out.'
}

/** Where batch part `partIndex` of `batch`, in the step being computed, comes from. */
export function siteOf(
  batch: PreparedBatch<unknown>,
  partIndex: number,
  at: {step: number; totalSteps: number; epoch: number; datasets: TrainingDataset[]},
  what: string,
): NonFiniteSite {
  const sampled = batch.sampled.parts[partIndex]!
  const dataset = at.datasets[sampled.dataset]!
  return {
    step: at.step,
    totalSteps: at.totalSteps,
    epoch: at.epoch,
    batch: batch.index,
    task: dataset.task,
    dataset: dataset.name,
    path: dataset.path,
    rows: sampled.rows.map((r) => fileRowOf(dataset, r)),
    what,
  }
}

/**
 * A non-finite loss or gradient at `site`: with `stop`, throws the NonFiniteError that ends the run
 * (nothing of the step applied; the last good checkpoint named); with `skip-batch`, reports the
 * skipped batch as a `warning` event and returns.
 */
export function handleNonFinite(site: NonFiniteSite, policy: OnNonFinite, last: {path: string; step: number} | undefined, onEvent?: (event: WarningEvent) => void): void {
  const where = describeSite(site)
  if (policy === 'stop') throw new NonFiniteError(`${where}. Training stopped; nothing of this step was applied. ${lastCheckpointText(last)}`)
  const {step, epoch, batch, task, dataset, rows} = site
  onEvent?.({type: 'warning', code: 'skipped-batch', message: `${where}; the batch was skipped (onNonFinite: skip-batch)`, step, epoch, batch, task, dataset, rows})
}
