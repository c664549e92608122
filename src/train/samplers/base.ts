/**
 * Shared machinery: epoch bookkeeping and resumable state. Each concrete sampler only says how
 * one epoch's batches are built from an RNG (held compactly, compact.ts) and how many an epoch has.
 * The current epoch's plan is held once (the trainer, the plan and the memory plan share it) and a
 * batch's rows are built as plain arrays when it is handed out.
 */
import {Rng} from '../../core/rng.js'
import type {EpochBatches, Sampler, SamplerBatch, SamplerDataset, SamplerState, TaskKind} from './types.js'

export abstract class EpochSampler implements Sampler {
  abstract readonly name: string
  private state: SamplerState
  /** The plan of the epoch whose RNG state is `rng` (a plan is a function of that state alone). */
  private plan: {rng: number; batches: EpochBatches} | undefined

  constructor(protected readonly datasets: SamplerDataset[], seed: number) {
    if (datasets.length === 0) throw new Error('sampler: no datasets to sample from')
    for (const d of datasets) if (!(Number.isInteger(d.size) && d.size >= 0)) throw new Error(`sampler: dataset ${d.name} has invalid size ${d.size}`)
    this.state = {epoch: 0, position: 0, epochRng: new Rng(seed).seed()}
  }

  /** Builds one epoch's batches, drawing all randomness from `rng`. */
  protected abstract buildEpoch(rng: Rng): EpochBatches
  /** The number of batches every epoch has (it does not depend on the draws): closed form, no plan built. */
  abstract batchCount(): number
  abstract batchSize(task: TaskKind): number

  epochBatches(): EpochBatches {
    const rng = this.state.epochRng
    if (this.plan?.rng !== rng) {
      this.plan = undefined // the previous epoch's plan can go before the next one is built
      this.plan = {rng, batches: this.buildEpoch(Rng.fromState(rng))}
    }
    return this.plan.batches
  }

  epochPlan(): SamplerBatch[] {
    const batches = this.epochBatches()
    return Array.from({length: batches.length}, (_, i) => batches.batch(i))
  }

  next(): SamplerBatch | undefined {
    const plan = this.epochBatches()
    if (this.state.position >= plan.length) return undefined
    return plan.batch(this.state.position++)
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
    // The plan held stays valid while the epoch's RNG state is the same (epochBatches checks it).
    this.state = {...state}
  }
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
