/**
 * `mixed` — batches that mix datasets and tasks (the conventional multi-task baseline).
 *
 * Per epoch all rows of all datasets are shuffled together and cut into batches of batchSize; a
 * batch therefore has one part per dataset it touches, and the trainer sums each part's task loss
 * (in-batch negatives only come from the same part). Options: batchSize, dropLast.
 */
import type {Rng} from '../../core/rng.js'
import {FixedSizeSampler, type FixedSizeSamplerOptions} from './base.js'
import type {BatchPart, SamplerBatch, SamplerDataset} from './types.js'

export type MixedSamplerOptions = FixedSizeSamplerOptions

export class MixedSampler extends FixedSizeSampler {
  readonly name = 'mixed'

  protected buildEpoch(rng: Rng): SamplerBatch[] {
    const all: Array<[number, number]> = []
    this.datasets.forEach((d, dataset) => {
      for (let row = 0; row < d.size; row++) all.push([dataset, row])
    })
    rng.shuffle(all)
    const out: SamplerBatch[] = []
    for (let start = 0; start < all.length; start += this.size) {
      const slice = all.slice(start, start + this.size)
      if (this.dropLast && slice.length < this.size) break
      const parts = new Map<number, BatchPart>()
      for (const [dataset, row] of slice) {
        if (!parts.has(dataset)) parts.set(dataset, {dataset, rows: []})
        parts.get(dataset)!.rows.push(row)
      }
      out.push({parts: [...parts.values()].sort((a, b) => a.dataset - b.dataset)})
    }
    return out
  }
}

export function create(datasets: SamplerDataset[], options: MixedSamplerOptions, seed: number): MixedSampler {
  return new MixedSampler(datasets, options, seed)
}
