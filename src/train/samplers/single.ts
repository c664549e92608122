/**
 * `single` — single-dataset batches with one batch size for every task (ablation baseline).
 *
 * Like `dynamic` with policy `proportional`, except that IR and STS batches have the same size
 * (batchSize). Shows what per-task batch sizes buy. Options: batchSize, dropLast.
 */
import type {Rng} from '../../core/rng.js'
import {FixedSizeSampler, type FixedSizeSamplerOptions, shuffledBatches} from './base.js'
import type {SamplerBatch, SamplerDataset} from './types.js'

export type SingleSamplerOptions = FixedSizeSamplerOptions

export class SingleSizeSampler extends FixedSizeSampler {
  readonly name = 'single'

  protected buildEpoch(rng: Rng): SamplerBatch[] {
    const batches = this.datasets.flatMap((d, index) =>
      shuffledBatches(d.size, this.size, rng)
        .filter((rows) => !this.dropLast || rows.length === this.size)
        .map((rows): SamplerBatch => ({parts: [{dataset: index, rows}]})),
    )
    return rng.shuffle(batches)
  }
}

export function create(datasets: SamplerDataset[], options: SingleSamplerOptions, seed: number): SingleSizeSampler {
  return new SingleSizeSampler(datasets, options, seed)
}
