/**
 * `mixed` — batches that mix datasets and tasks (the conventional multi-task baseline).
 *
 * Per epoch all rows of all datasets are shuffled together and cut into batches of batchSize; a
 * batch therefore has one part per dataset it touches, and the trainer sums each part's task loss
 * (in-batch negatives only come from the same part). Options: batchSize, dropLast.
 */
import type {Rng} from '../../core/rng.js'
import {FixedSizeSampler, type FixedSizeSamplerOptions} from './base.js'
import {MixedEpoch, datasetBatchCount} from './compact.js'
import type {EpochBatches, SamplerDataset} from './types.js'

export type MixedSamplerOptions = FixedSizeSamplerOptions

export class MixedSampler extends FixedSizeSampler {
  readonly name = 'mixed'

  protected buildEpoch(rng: Rng): EpochBatches {
    return new MixedEpoch(this.datasets.map((d) => d.size), this.size, this.dropLast, rng)
  }

  batchCount(): number {
    return datasetBatchCount(this.datasets.reduce((a, d) => a + d.size, 0), this.size, this.dropLast)
  }
}

export function create(datasets: SamplerDataset[], options: MixedSamplerOptions, seed: number): MixedSampler {
  return new MixedSampler(datasets, options, seed)
}
