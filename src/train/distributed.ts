/**
 * Data-parallel training across processes (ranks), the paper's 8-GPU setup: every rank holds the
 * whole model, computes its shard of each global batch, and the ranks take one identical optimizer
 * step with the gradients averaged over them.
 *
 * - Parameters: broadcast from rank 0 when training starts (after a resume too), so every rank
 *   starts from the same weights whatever it loaded or initialised.
 * - Sampler: `ShardedSampler` cuts every global batch of the wrapped sampler's plan into one
 *   contiguous slice of rows per rank (per part, for `mixed`): all ranks run the same batch index,
 *   dataset and task at every step (the collectives match), and the union of the shards is exactly
 *   the single-process plan. Global batch per task = per-device batch × world size × accumulation
 *   (run.ts multiplies the configured per-device batch sizes by the world size).
 * - Gradients: after a rank has accumulated its step's gradients (mean over its accumulated
 *   batches), one all-reduce (average, bucketed by concatenation) before clipping, so clipping and
 *   AdamW see the same numbers on every rank.
 *   Hence 2 ranks × batch B step like 1 rank × batch B with gradientAccumulation 2 over the same two
 *   sub-batches: in-batch negatives and STS losses stay per sub-batch in both (test (a)).
 * - Reporting: the step's loss terms (mean) and examples/tokens (sum) are reduced, so rank 0's
 *   events, history and checkpoints describe the whole job; rank 0 alone writes checkpoints, events
 *   and the final model (run.ts).
 * - Seeds: rank r's batch seed is the global batch seed mixed with r (rank 0 keeps it), so the ranks'
 *   dropout masks and negative draws differ from one another.
 */
import * as tf from '@tensorflow/tfjs-core'
import type {Collectives} from '../tensor/collectives.js'
import {CheckpointError} from './checkpoint.js'
import type {ProcessGroup} from './memory-plan.js'
import type {EpochBatches, Sampler, SamplerBatch, SamplerState, TaskKind} from './samplers/types.js'
import {batchesPerEpoch, epochBatchesOf} from './samplers/outline.js'

export class DataParallel implements ProcessGroup {
  constructor(readonly group: Collectives) {}

  get rank(): number {
    return this.group.rank
  }

  get size(): number {
    return this.group.worldSize
  }

  /** Rank 0 writes checkpoints, events and the model. */
  get isMain(): boolean {
    return this.group.rank === 0
  }

  /** Replaces every parameter with rank 0's values. */
  async syncParameters(variables: Map<string, tf.Variable>): Promise<void> {
    const names = [...variables.keys()].sort()
    const synced = await this.group.broadcast(names.map((n) => variables.get(n)!), 0)
    names.forEach((name, i) => {
      variables.get(name)!.assign(synced[i]!)
      synced[i]!.dispose()
    })
  }

  /**
   * grads[name] ← mean over ranks, for every parameter (one missing on a rank counts as zeros there,
   * so every rank issues the same collective). Entries are replaced; the old tensors disposed.
   */
  async averageGradients(grads: Map<string, tf.Tensor>, variables: Map<string, tf.Variable>): Promise<void> {
    const names = [...variables.keys()].filter((n) => variables.get(n)!.trainable).sort()
    const local = names.map((n) => grads.get(n) ?? tf.zerosLike(variables.get(n)!))
    const averaged = await this.group.allReduce(local, 'avg')
    names.forEach((name, i) => {
      const old = grads.get(name)
      if (old) old.dispose()
      else local[i]!.dispose()
      grads.set(name, averaged[i]!)
    })
  }

  /**
   * One step's report over the job: loss terms averaged over the ranks (the same keys on every rank:
   * the same task each step), examples and tokens summed.
   */
  async stepTotals<L extends Record<string, number>, C extends Record<string, Record<string, number>>>(step: {loss: L; components: C; examples: number; tokens: number}) {
    const lossKeys = Object.keys(step.loss).sort()
    const componentKeys = Object.keys(step.components).sort().flatMap((task) => Object.keys(step.components[task]!).sort().map((k) => [task, k] as const))
    const values = [...lossKeys.map((k) => step.loss[k]!), ...componentKeys.map(([t, k]) => step.components[t]![k]!)]
    const n = values.length
    const local = tf.tensor1d([...values.map((v) => v / this.size), step.examples, step.tokens], 'float32')
    const [summed] = await this.group.allReduce([local], 'sum')
    local.dispose()
    const out = summed!.dataSync()
    summed!.dispose()
    const loss: Record<string, number> = {}
    lossKeys.forEach((k, i) => (loss[k] = out[i]!))
    const components: Record<string, Record<string, number>> = {}
    componentKeys.forEach(([t, k], i) => ((components[t] ??= {})[k] = out[lossKeys.length + i]!))
    return {loss: loss as L, components: components as C, examples: Math.round(out[n]!), tokens: Math.round(out[n + 1]!)}
  }

  /** Whether any rank asked to stop (every rank calls this at the same step boundary). */
  async agreeToStop(requested: boolean): Promise<boolean> {
    const flag = tf.tensor1d([requested ? 1 : 0])
    const [any] = await this.group.allReduce([flag], 'sum')
    flag.dispose()
    const value = any!.dataSync()[0]!
    any!.dispose()
    return value > 0
  }

  /** Rank 0's `value` (any JSON value) on every rank. */
  async broadcast<T>(value: T): Promise<T> {
    const bytes = this.isMain ? new TextEncoder().encode(JSON.stringify(value ?? null)) : new Uint8Array(0)
    const length = tf.tensor1d([bytes.length], 'int32')
    const [n] = await this.group.broadcast([length], 0)
    length.dispose()
    const size = n!.dataSync()[0]!
    n!.dispose()
    const body = tf.tensor1d(this.isMain ? Int32Array.from(bytes) : new Int32Array(size), 'int32')
    const [received] = await this.group.broadcast([body], 0)
    body.dispose()
    const text = new TextDecoder().decode(Uint8Array.from(received!.dataSync() as Int32Array))
    received!.dispose()
    return (value === undefined && text === 'null' ? undefined : JSON.parse(text)) as T
  }

  /** This rank's seed for a global batch seed (rank 0 keeps it: its batches are the single-process run's). */
  seedOf(batchSeed: number): number {
    return this.rank === 0 ? batchSeed : (batchSeed ^ Math.imul(this.rank, 0x9e3779b1)) >>> 0
  }

  close(): void {
    this.group.close()
  }
}

/** Refuses a checkpoint of a run with another world size (the shards, hence the steps, would differ). */
export function checkWorldSize(recorded: number | undefined, size: number, dir: string): void {
  const was = recorded ?? 1
  if (was !== size)
    throw new CheckpointError(
      `${dir}: checkpoint was trained by ${was} process(es), this run has ${size}: resume with the same world size (--nproc-per-node / WORLD_SIZE ${was}); ` +
        'a different one would cut every global batch into other shards',
    )
}

/**
 * Rank `rank`'s share of each batch of `inner`'s plan: per part, rows[⌊r·n/W⌋, ⌊(r+1)·n/W⌋). The
 * state (epoch, position, RNG) is the wrapped sampler's, so checkpoints record the global plan's
 * position. A part with fewer rows than ranks would leave a rank without rows: refused, naming it,
 * for the whole epoch before its first batch is handed out (checked from the parts' sizes, no plan
 * of rows built). Batches are sharded one at a time as they are handed out.
 */
export class ShardedSampler implements Sampler {
  /** The epoch (`epoch:epochRng`) whose batches all have a row for every rank. */
  private checked?: string

  constructor(
    readonly inner: Sampler,
    readonly rank: number,
    readonly worldSize: number,
    private readonly datasetName: (index: number) => string = (i) => `dataset ${i}`,
  ) {}

  get name(): string {
    return this.inner.name
  }

  private tooFew(index: number, rows: number, dataset: number): Error {
    return new Error(
      `batch ${index} of epoch ${this.inner.getState().epoch} has ${rows} row(s) of ${this.datasetName(dataset)} for ${this.worldSize} processes: ` +
        'every process needs at least one; set the sampler\'s dropLast: true (or use larger batches)',
    )
  }

  /** This rank's share [from, to) of a part of n rows. */
  private range(n: number): [number, number] {
    return [Math.floor((this.rank * n) / this.worldSize), Math.floor(((this.rank + 1) * n) / this.worldSize)]
  }

  shard(batch: SamplerBatch, index: number): SamplerBatch {
    return {
      parts: batch.parts.map((part) => {
        const n = part.rows.length
        if (n < this.worldSize) throw this.tooFew(index, n, part.dataset)
        return {dataset: part.dataset, rows: part.rows.slice(...this.range(n))}
      }),
    }
  }

  /** Refuses the current epoch if a part of one of its batches has fewer rows than ranks (once per epoch). */
  private checkEpoch(): void {
    const state = this.inner.getState()
    const key = `${state.epoch}:${state.epochRng}`
    if (this.checked === key) return
    const plan = epochBatchesOf(this.inner)
    for (let i = 0; i < plan.length; i++) for (const part of plan.parts(i)) if (part.size < this.worldSize) throw this.tooFew(i, part.size, part.dataset)
    this.checked = key
  }

  epochPlan(): SamplerBatch[] {
    return this.inner.epochPlan().map((b, i) => this.shard(b, i))
  }

  epochBatches(): EpochBatches {
    this.checkEpoch()
    const inner = epochBatchesOf(this.inner)
    return {
      length: inner.length,
      batch: (i) => this.shard(inner.batch(i), i),
      parts: (i) => inner.parts(i).map(({dataset, size}) => {
        const [from, to] = this.range(size)
        return {dataset, size: to - from}
      }),
    }
  }

  batchCount(): number {
    this.checkEpoch()
    return batchesPerEpoch(this.inner)
  }

  next(): SamplerBatch | undefined {
    this.checkEpoch()
    const {position} = this.inner.getState()
    const batch = this.inner.next()
    return batch ? this.shard(batch, position) : undefined
  }

  nextEpoch(): void {
    this.inner.nextEpoch()
  }

  getState(): SamplerState {
    return this.inner.getState()
  }

  setState(state: SamplerState): void {
    this.inner.setState(state)
  }

  /** The largest shard of a task's batch. */
  batchSize(task: TaskKind): number {
    return Math.ceil(this.inner.batchSize(task) / this.worldSize)
  }
}
