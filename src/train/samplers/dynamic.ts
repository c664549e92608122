/**
 * `dynamic` — CoDiEmb's single-task batch sampler.
 *
 * Every batch holds rows of exactly one dataset, hence one task, so each task's loss sees a
 * homogeneous batch (IR batches of queries with positives/negatives, STS batches of scored
 * pairs) with that task's own batch size (paper: IR 64, STS 32 per device).
 *
 * Per epoch: each dataset is shuffled with the seeded RNG and cut into batches of its task's batch
 * size (the last one short unless dropLast). The batches of all datasets are then interleaved by
 * a balancing policy:
 * - `proportional` (the paper code's behaviour): one uniform shuffle of all batches, so each task
 *   gets steps in proportion to its data size;
 * - `round-robin`: alternate tasks (ir, sts, ir, …) as long as both have batches left, each task's
 *   batches in shuffled order, then the rest of the task that has more;
 * - `temperature`: repeatedly pick a dataset with probability ∝ n_d^α among those with batches left
 *   (α = 1 is proportional in expectation, α = 0 uniform over datasets).
 * Every policy hands out every batch exactly once per epoch, so every row is used once per epoch
 * (unless dropLast). Gradient accumulation happens in the trainer over consecutive batches and
 * never skips any (the paper's code dropped (GA−1)/GA of each global batch; codiemb does not).
 *
 * Options: batchSizes {ir, sts}, policy, alpha (temperature exponent, default 0.5), dropLast.
 */
import {Rng} from '../../core/rng.js'
import {EpochSampler} from './base.js'
import {DatasetBatches, SinglePartEpoch, datasetBatchCount, indices} from './compact.js'
import type {EpochBatches, SamplerDataset, TaskKind} from './types.js'

export type BalancingPolicy = 'proportional' | 'round-robin' | 'temperature'

export interface DynamicSamplerOptions {
  batchSizes?: Partial<Record<TaskKind, number>>
  policy?: BalancingPolicy
  alpha?: number
  dropLast?: boolean
}

export const PAPER_BATCH_SIZES: Record<TaskKind, number> = {ir: 64, sts: 32}

export class DynamicSampler extends EpochSampler {
  readonly name = 'dynamic'
  private readonly sizes: Record<TaskKind, number>
  private readonly policy: BalancingPolicy
  private readonly alpha: number
  private readonly dropLast: boolean

  constructor(datasets: SamplerDataset[], options: DynamicSamplerOptions, seed: number) {
    super(datasets, seed)
    this.sizes = {...PAPER_BATCH_SIZES, ...options.batchSizes}
    this.policy = options.policy ?? 'proportional'
    this.alpha = options.alpha ?? 0.5
    this.dropLast = options.dropLast ?? false
  }

  batchSize(task: TaskKind): number {
    return this.sizes[task]
  }

  batchCount(): number {
    return this.datasets.reduce((a, d) => a + datasetBatchCount(d.size, this.sizes[d.task], this.dropLast), 0)
  }

  protected buildEpoch(rng: Rng): EpochBatches {
    // Per-dataset batches first (one RNG draw sequence per dataset, in dataset order); batch ids
    // number them over the datasets in order (compact.ts).
    const batches = new DatasetBatches(this.datasets.map((d) => d.size), this.datasets.map((d) => this.sizes[d.task]), this.dropLast, rng)
    switch (this.policy) {
      case 'proportional':
        return new SinglePartEpoch(batches, rng.shuffle(indices(batches.count, 'batches')))
      case 'round-robin':
        return new SinglePartEpoch(batches, this.roundRobin(batches, rng))
      case 'temperature':
        return new SinglePartEpoch(batches, this.temperature(batches, rng))
    }
  }

  /** Each task's batches (its datasets' in dataset order) shuffled, tasks in sorted order; then one batch per task per round. */
  private roundRobin(batches: DatasetBatches, rng: Rng): Int32Array {
    const queues = new Map<TaskKind, Int32Array>()
    this.datasets.forEach((d, index) => {
      const before = queues.get(d.task) ?? new Int32Array(0)
      const ids = batches.idsOf(index)
      const joined = new Int32Array(before.length + ids.length)
      joined.set(before)
      joined.set(ids, before.length)
      queues.set(d.task, joined)
    })
    const tasks = [...queues.keys()].sort()
    for (const task of tasks) rng.shuffle(queues.get(task)!)
    const out = new Int32Array(batches.count)
    let n = 0
    for (let round = 0; n < out.length; round++) {
      for (const task of tasks) {
        const queue = queues.get(task)!
        if (round < queue.length) out[n++] = queue[round]!
      }
    }
    return out
  }

  /** Repeatedly a dataset with batches left, with probability ∝ size^alpha; its next batch. */
  private temperature(batches: DatasetBatches, rng: Rng): Int32Array {
    const weights = this.datasets.map((d) => (d.size > 0 ? Math.pow(d.size, this.alpha) : 0))
    const ids = this.datasets.map((_, d) => batches.idsOf(d))
    const cursors = ids.map(() => 0)
    const out = new Int32Array(batches.count)
    for (let n = 0; n < out.length; n++) {
      let mass = 0
      for (let d = 0; d < ids.length; d++) if (cursors[d]! < ids[d]!.length) mass += weights[d]!
      let pick = rng.next() * mass
      let chosen = -1
      for (let d = 0; d < ids.length; d++) {
        if (cursors[d]! >= ids[d]!.length) continue
        chosen = d
        pick -= weights[d]!
        if (pick < 0) break
      }
      out[n] = ids[chosen]![cursors[chosen]!++]!
    }
    return out
  }
}

export function create(datasets: SamplerDataset[], options: DynamicSamplerOptions, seed: number): DynamicSampler {
  return new DynamicSampler(datasets, options, seed)
}
