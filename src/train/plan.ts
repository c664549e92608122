/**
 * The training plan (what `codiemb train --dry-run` prints and the final model records): per dataset
 * and task, how many batches and optimizer steps an epoch has, examples per step, negatives per
 * query, warm-up, and the losses and sampler with the options they run with.
 */
import type {TrainSection} from './config.js'
import type {TrainingDataset} from './data.js'
import type {IrObjective} from './objective.js'
import type {Sampler} from './samplers/types.js'

import type {ResolvedLoss, TrainPlan} from '../core/events.js'

export type {PlannedDataset, ResolvedLoss, TrainPlan} from '../core/events.js'

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
  const batches = sampler.epochPlan()
  const stepsPerEpoch = Math.ceil(batches.length / ga)
  const totalSteps = stepsPerEpoch * epochs
  const perDataset = datasets.map(() => ({batches: 0, steps: new Set<number>()}))
  const stepsByTask: Record<string, Set<number>> = {}
  batches.forEach((b, i) => {
    for (const part of b.parts) {
      perDataset[part.dataset].batches++
      perDataset[part.dataset].steps.add(Math.floor(i / ga))
      const task = datasets[part.dataset].task
      ;(stepsByTask[task] ??= new Set()).add(Math.floor(i / ga))
    }
  })
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
      stepsPerEpoch: perDataset[i].steps.size,
    })),
    batchesPerEpoch: batches.length,
    stepsPerEpoch,
    stepsPerEpochByTask: Object.fromEntries(Object.entries(stepsByTask).map(([k, v]) => [k, v.size])),
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
