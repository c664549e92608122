/**
 * `single` — single-dataset batches with one batch size for every task (ablation baseline).
 *
 * Like `dynamic` with policy `proportional`, except that IR and STS batches have the same size
 * (batchSize). Shows what per-task batch sizes buy. Options: batchSize, dropLast.
 */
import type {Rng} from '../../core/rng.js'
import {FixedSizeSampler, type FixedSizeSamplerOptions} from './base.js'
import {DatasetBatches, SinglePartEpoch, datasetBatchCount, indices} from './compact.js'
import type {EpochBatches, SamplerDataset} from './types.js'

export type SingleSamplerOptions = FixedSizeSamplerOptions

export class SingleSizeSampler extends FixedSizeSampler {
  readonly name = 'single'

  protected buildEpoch(rng: Rng): EpochBatches {
    // Each dataset shuffled and cut (in dataset order), then one shuffle of all batches.
    const batches = new DatasetBatches(this.datasets.map((d) => d.size), this.datasets.map(() => this.size), this.dropLast, rng)
    return new SinglePartEpoch(batches, rng.shuffle(indices(batches.count, 'batches')))
  }

  batchCount(): number {
    return this.datasets.reduce((a, d) => a + datasetBatchCount(d.size, this.size, this.dropLast), 0)
  }
}

export function create(datasets: SamplerDataset[], options: SingleSamplerOptions, seed: number): SingleSizeSampler {
  return new SingleSizeSampler(datasets, options, seed)
}
