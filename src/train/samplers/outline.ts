/**
 * What the trainer, the plan and the memory plan ask of any sampler — an epoch's batch count and
 * its batches one at a time — taken from the sampler's compact forms when it has them
 * (`batchCount`, `epochBatches`, see types.ts), else from its `epochPlan()` (a plugin sampler that
 * implements only the required methods works unchanged, holding its plan as it chooses).
 */
import type {EpochBatches, Sampler, SamplerBatch} from './types.js'

/** Batches of the sampler's current epoch, counted without building a plan where the sampler can. */
export function batchesPerEpoch(sampler: Sampler): number {
  if (sampler.batchCount) return sampler.batchCount()
  return epochBatchesOf(sampler).length
}

/** An EpochBatches over a plan held as arrays. */
export function arrayEpoch(plan: SamplerBatch[]): EpochBatches {
  return {
    length: plan.length,
    batch: (i) => plan[i]!,
    parts: (i) => plan[i]!.parts.map((p) => ({dataset: p.dataset, size: p.rows.length})),
  }
}

/** The sampler's current epoch: its compact plan, or its `epochPlan()`. */
export function epochBatchesOf(sampler: Sampler): EpochBatches {
  return sampler.epochBatches ? sampler.epochBatches() : arrayEpoch(sampler.epochPlan())
}

/** Whether a batch of the epoch has parts of more than one dataset (its parts' sizes are looked at, not its rows). */
export function hasMultiPartBatch(plan: EpochBatches): boolean {
  for (let i = 0; i < plan.length; i++) if (plan.parts(i).length > 1) return true
  return false
}
