/**
 * Epoch plans held compactly (types.ts EpochBatches), so that planning over millions of rows costs
 * 4 bytes a row (an Int32Array of row indices) plus one entry per batch instead of JS arrays of
 * row indices (~20 bytes a row, and as much again in garbage while a plan is built).
 *
 * The plans are exactly those of the earlier array-based samplers: Rng.shuffle draws depend only on
 * an array's length, so shuffling an Int32Array of 0..n−1 gives the permutation a number[] got, and
 * shuffling an Int32Array of batch ids draws what shuffling the array of batches drew.
 *
 * - DatasetBatches: each dataset's rows shuffled (one shuffle per dataset, in dataset order) and cut
 *   into consecutive batches of its batch size, the last one short (or dropped with dropLast). Batch
 *   ids number these batches over the datasets in order (dataset 0's first, …).
 * - SinglePartEpoch: an order of batch ids (how a sampler interleaves the datasets' batches); every
 *   batch has one part.
 * - MixedEpoch: all rows of all datasets as global ids (dataset offset + row) shuffled together and
 *   cut into batches; a batch's parts are its rows grouped by dataset, in dataset order, each part's
 *   rows in the order drawn.
 * `datasetBatchCount` gives the counts in closed form, for samplers that count without planning.
 */
import type {Rng} from '../../core/rng.js'
import type {BatchPart, EpochBatches, PartSize, SamplerBatch} from './types.js'

/** Batches one dataset of `size` rows is cut into with batches of `batchSize`. */
export function datasetBatchCount(size: number, batchSize: number, dropLast: boolean): number {
  return dropLast ? Math.floor(size / batchSize) : Math.ceil(size / batchSize)
}

/** 0…n−1 as an Int32Array (row indices are below 2³¹: a dataset of more rows is refused). */
export function indices(n: number, what = 'rows'): Int32Array {
  if (n > 0x7fffffff) throw new Error(`sampler: ${n} ${what} is more than a plan can index (2^31 − 1)`)
  const out = new Int32Array(n)
  for (let i = 0; i < n; i++) out[i] = i
  return out
}

/** Each dataset's rows shuffled and cut into batches (see the module comment). */
export class DatasetBatches {
  /** Per dataset, its rows in shuffled order. */
  private readonly orders: Int32Array[]
  /** Per dataset, the id of its first batch; the last entry is the number of batches. */
  private readonly first: number[]

  constructor(sizes: readonly number[], private readonly batchSizes: readonly number[], dropLast: boolean, rng: Rng) {
    this.orders = sizes.map((n) => rng.shuffle(indices(n)))
    this.first = [0]
    sizes.forEach((n, d) => this.first.push(this.first[d]! + datasetBatchCount(n, batchSizes[d]!, dropLast)))
  }

  /** Batches over all datasets. */
  get count(): number {
    return this.first[this.first.length - 1]!
  }

  /** Dataset `d`'s batch ids, in order. */
  idsOf(d: number): Int32Array {
    const out = new Int32Array(this.first[d + 1]! - this.first[d]!)
    for (let k = 0; k < out.length; k++) out[k] = this.first[d]! + k
    return out
  }

  /** The dataset of batch `id` (datasets are few: a linear scan). */
  datasetOf(id: number): number {
    let d = 0
    while (this.first[d + 1]! <= id) d++
    return d
  }

  part(id: number): PartSize {
    const dataset = this.datasetOf(id)
    const start = (id - this.first[dataset]!) * this.batchSizes[dataset]!
    return {dataset, size: Math.min(this.batchSizes[dataset]!, this.orders[dataset]!.length - start)}
  }

  rows(id: number): BatchPart {
    const dataset = this.datasetOf(id)
    const start = (id - this.first[dataset]!) * this.batchSizes[dataset]!
    return {dataset, rows: Array.from(this.orders[dataset]!.subarray(start, start + this.batchSizes[dataset]!))}
  }
}

/** An epoch of single-part batches: `order` lists the batch ids of `batches` in the order they run. */
export class SinglePartEpoch implements EpochBatches {
  constructor(
    private readonly batches: DatasetBatches,
    private readonly order: Int32Array,
  ) {}

  get length(): number {
    return this.order.length
  }

  batch(i: number): SamplerBatch {
    return {parts: [this.batches.rows(this.order[i]!)]}
  }

  parts(i: number): PartSize[] {
    return [this.batches.part(this.order[i]!)]
  }
}

/** An epoch of batches cut from all datasets' rows shuffled together (see the module comment). */
export class MixedEpoch implements EpochBatches {
  /** Global row ids (dataset offset + row) in shuffled order. */
  private readonly order: Int32Array
  /** Per dataset, the global id of its first row; the last entry is the total. */
  private readonly offsets: number[]
  readonly length: number

  constructor(sizes: readonly number[], private readonly size: number, dropLast: boolean, rng: Rng) {
    this.offsets = [0]
    sizes.forEach((n, d) => this.offsets.push(this.offsets[d]! + n))
    const total = this.offsets[sizes.length]!
    this.order = rng.shuffle(indices(total))
    this.length = datasetBatchCount(total, size, dropLast)
  }

  private datasetOf(global: number): number {
    let d = 0
    while (this.offsets[d + 1]! <= global) d++
    return d
  }

  private slice(i: number): Int32Array {
    return this.order.subarray(i * this.size, (i + 1) * this.size)
  }

  batch(i: number): SamplerBatch {
    const parts = new Map<number, BatchPart>()
    for (const global of this.slice(i)) {
      const dataset = this.datasetOf(global)
      let part = parts.get(dataset)
      if (!part) parts.set(dataset, (part = {dataset, rows: []}))
      part.rows.push(global - this.offsets[dataset]!)
    }
    return {parts: [...parts.values()].sort((a, b) => a.dataset - b.dataset)}
  }

  parts(i: number): PartSize[] {
    const counts = new Map<number, number>()
    for (const global of this.slice(i)) {
      const dataset = this.datasetOf(global)
      counts.set(dataset, (counts.get(dataset) ?? 0) + 1)
    }
    return [...counts].map(([dataset, size]) => ({dataset, size})).sort((a, b) => a.dataset - b.dataset)
  }
}
