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
import {EpochSampler, shuffledBatches} from './base.js'
import type {SamplerBatch, SamplerDataset, TaskKind} from './types.js'

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

  protected buildEpoch(rng: Rng): SamplerBatch[] {
    // Per-dataset batches first (one RNG draw sequence per dataset, in dataset order).
    const perDataset = this.datasets.map((d, index) => {
      const size = this.sizes[d.task]
      let batches = shuffledBatches(d.size, size, rng)
      if (this.dropLast) batches = batches.filter((b) => b.length === size)
      return batches.map((rows): SamplerBatch => ({parts: [{dataset: index, rows}]}))
    })
    switch (this.policy) {
      case 'proportional':
        return rng.shuffle(perDataset.flat())
      case 'round-robin':
        return this.roundRobin(perDataset, rng)
      case 'temperature':
        return this.temperature(perDataset, rng)
    }
  }

  private roundRobin(perDataset: SamplerBatch[][], rng: Rng): SamplerBatch[] {
    const queues = new Map<TaskKind, SamplerBatch[]>()
    perDataset.forEach((batches, index) => {
      const task = this.datasets[index].task
      queues.set(task, [...(queues.get(task) ?? []), ...batches])
    })
    const tasks = [...queues.keys()].sort()
    for (const task of tasks) rng.shuffle(queues.get(task)!)
    const out: SamplerBatch[] = []
    for (let round = 0; out.length < perDataset.reduce((a, b) => a + b.length, 0); round++) {
      for (const task of tasks) {
        const queue = queues.get(task)!
        if (round < queue.length) out.push(queue[round])
      }
    }
    return out
  }

  private temperature(perDataset: SamplerBatch[][], rng: Rng): SamplerBatch[] {
    const weights = this.datasets.map((d) => (d.size > 0 ? Math.pow(d.size, this.alpha) : 0))
    const cursors = perDataset.map(() => 0)
    const out: SamplerBatch[] = []
    const total = perDataset.reduce((a, b) => a + b.length, 0)
    while (out.length < total) {
      let mass = 0
      for (let d = 0; d < perDataset.length; d++) if (cursors[d] < perDataset[d].length) mass += weights[d]
      let pick = rng.next() * mass
      let chosen = -1
      for (let d = 0; d < perDataset.length; d++) {
        if (cursors[d] >= perDataset[d].length) continue
        chosen = d
        pick -= weights[d]
        if (pick < 0) break
      }
      out.push(perDataset[chosen][cursors[chosen]++])
    }
    return out
  }
}

export function create(datasets: SamplerDataset[], options: DynamicSamplerOptions, seed: number): DynamicSampler {
  return new DynamicSampler(datasets, options, seed)
}
