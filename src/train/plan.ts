/**
 * The training plan (what `codiemb train --dry-run` prints and the final model records): per dataset
 * and task, how many batches and optimizer steps an epoch has, examples per step, negatives per
 * query, warm-up, and the losses and sampler with the options they run with.
 */
import type {TrainSection} from './config.js'
import type {TrainingDataset} from './data.js'
import type {IrObjective} from './objective.js'
import type {Sampler} from './samplers/types.js'
import {epochBatchesOf} from './samplers/outline.js'

import type {ResolvedLoss, TrainPlan} from '../core/events.js'

export type {PlannedDataset, ResolvedLoss, TrainPlan} from '../core/events.js'

/** Counts `step` once for a dataset or task (steps come in order). */
function countStep(counter: {steps: number; last: number}, step: number): void {
  if (counter.last === step) return
  counter.steps++
  counter.last = step
}

/** Plans one run from the sampler's epoch plan, the losses and the section's schedule. */
export function computePlan(
  section: TrainSection,
  datasets: TrainingDataset[],
  sampler: Sampler,
  samplerSpec: {name: string; options: Record<string, unknown>},
  losses: Record<string, ResolvedLoss[]>,
  ir: IrObjective,
): TrainPlan {
  const ga = section.gradientAccumulation
  const epochs = section.epochs
  // The epoch's plan held compactly (the sampler keeps it for the trainer's first epoch); only the
  // parts' datasets and sizes are looked at, never a batch's rows.
  const batches = epochBatchesOf(sampler)
  const stepsPerEpoch = Math.ceil(batches.length / ga)
  const totalSteps = stepsPerEpoch * epochs
  // Steps are counted as batches go by in order: a step is new for a dataset (task) if it is not
  // the last one counted for it.
  const perDataset = datasets.map(() => ({batches: 0, steps: 0, last: -1}))
  const byTask: Record<string, {steps: number; last: number}> = {}
  for (let i = 0; i < batches.length; i++) {
    const step = Math.floor(i / ga)
    for (const part of batches.parts(i)) {
      perDataset[part.dataset].batches++
      countStep(perDataset[part.dataset], step)
      countStep((byTask[datasets[part.dataset].task] ??= {steps: 0, last: -1}), step)
    }
  }
  const examplesPerBatch: Record<string, number> = {}
  const examplesPerStep: Record<string, number> = {}
  for (const task of new Set(datasets.map((d) => d.task))) {
    examplesPerBatch[task] = sampler.batchSize(task)
    examplesPerStep[task] = sampler.batchSize(task) * ga
  }
  let negativesPerQuery: TrainPlan['negativesPerQuery']
  if (datasets.some((d) => d.task === 'ir')) {
    const B = sampler.batchSize('ir')
    const N = ir.negatives
    // Candidates per positive slot: B same-slot positives + B·N negatives; one is the target.
    negativesPerQuery = {hard: N, inBatch: (B - 1) * (N + 1), total: B * (N + 1) - 1, positivesPerQuery: ir.positives}
  }
  const warmupSteps = section.warmupSteps ?? Math.round(section.warmupRatio * totalSteps)
  return {
    sampler: samplerSpec,
    datasets: datasets.map((d, i) => ({
      name: d.name,
      task: d.task,
      path: d.path,
      rows: d.rows.length,
      droppedRows: d.dropped,
      batchSize: sampler.batchSize(d.task),
      batchesPerEpoch: perDataset[i].batches,
      stepsPerEpoch: perDataset[i].steps,
    })),
    batchesPerEpoch: batches.length,
    stepsPerEpoch,
    stepsPerEpochByTask: Object.fromEntries(Object.entries(byTask).map(([k, v]) => [k, v.steps])),
    epochs,
    totalSteps,
    warmupSteps,
    gradientAccumulation: ga,
    examplesPerBatch,
    examplesPerStep,
    negativesPerQuery,
    losses,
    droppedRows: datasets.reduce((a, d) => a + d.dropped, 0),
  }
}
