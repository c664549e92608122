/**
 * Shared machinery: epoch bookkeeping and resumable state. Each concrete sampler only says how
 * one epoch's batches are built from an RNG.
 */
import {Rng} from '../../core/rng.js'
import type {Sampler, SamplerBatch, SamplerDataset, SamplerState, TaskKind} from './types.js'

export abstract class EpochSampler implements Sampler {
  abstract readonly name: string
  private state: SamplerState
  private plan: SamplerBatch[] | undefined

  constructor(protected readonly datasets: SamplerDataset[], seed: number) {
    if (datasets.length === 0) throw new Error('sampler: no datasets to sample from')
    for (const d of datasets) if (!(Number.isInteger(d.size) && d.size >= 0)) throw new Error(`sampler: dataset ${d.name} has invalid size ${d.size}`)
    this.state = {epoch: 0, position: 0, epochRng: new Rng(seed).seed()}
  }

  /** Builds one epoch's batches, drawing all randomness from `rng`. */
  protected abstract buildEpoch(rng: Rng): SamplerBatch[]
  abstract batchSize(task: TaskKind): number

  epochPlan(): SamplerBatch[] {
    this.plan ??= this.buildEpoch(Rng.fromState(this.state.epochRng))
    return this.plan
  }

  next(): SamplerBatch | undefined {
    const plan = this.epochPlan()
    if (this.state.position >= plan.length) return undefined
    return plan[this.state.position++]
  }

  nextEpoch(): void {
    // The next epoch's RNG is derived from this epoch's, so epochs are independent of how many
    // random draws building a plan took.
    const rng = Rng.fromState(this.state.epochRng)
    this.state = {epoch: this.state.epoch + 1, position: 0, epochRng: rng.seed()}
    this.plan = undefined
  }

  getState(): SamplerState {
    return {...this.state}
  }

  setState(state: SamplerState): void {
    this.state = {...state}
    this.plan = undefined
  }
}

/** Cuts a shuffled copy of 0..size−1 into consecutive batches of `batchSize` (the last may be short). */
export function shuffledBatches(size: number, batchSize: number, rng: Rng): number[][] {
  const order = rng.shuffle(Array.from({length: size}, (_, i) => i))
  const out: number[][] = []
  for (let start = 0; start < size; start += batchSize) out.push(order.slice(start, start + batchSize))
  return out
}

/** Options of the samplers that use one batch size for every task (`single`, `mixed`). */
export interface FixedSizeSamplerOptions {
  batchSize?: number
  dropLast?: boolean
}

/** An EpochSampler with one batch size for all tasks (default 32) and optional dropLast. */
export abstract class FixedSizeSampler extends EpochSampler {
  protected readonly size: number
  protected readonly dropLast: boolean

  constructor(datasets: SamplerDataset[], options: FixedSizeSamplerOptions, seed: number) {
    super(datasets, seed)
    this.size = options.batchSize ?? 32
    this.dropLast = options.dropLast ?? false
  }

  batchSize(): number {
    return this.size
  }
}
