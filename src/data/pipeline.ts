/**
 * What stands between a dataset's reader and `prepare`'s validation: the dataset's row filters
 * (row-filter.ts), then its grouping (grouping.ts). A grouped dataset is read as STS-shaped pairs
 * (task `sts`) whatever its own task (ir or eval), and its outputs are the grouped task's kinds.
 */
import type {DatasetConfig} from './prepare-config.js'
import {checkFilters, filterRows, type RowFilter} from './row-filter.js'
import {checkGroup, Grouping, type GroupConfig} from './grouping.js'
import type {PreparedKind, ReadItem, Reader, ReadRequest, Task} from './types.js'

export class DatasetPipeline {
  /** The task the reader is asked for. */
  readonly readTask: Task
  private readonly filters: RowFilter[]
  private readonly group?: GroupConfig
  /** Set once `items` runs on a grouped dataset. */
  grouping?: Grouping

  constructor(
    private readonly ds: DatasetConfig,
    where: string,
  ) {
    this.filters = checkFilters(ds.filter, where)
    this.group = ds.group === undefined ? undefined : checkGroup(ds.group, where)
    this.readTask = this.group ? 'sts' : ds.task
  }

  /** The record kinds the dataset's outputs hold. */
  kinds(reader: Reader): PreparedKind[] {
    if (!this.group) return reader.kindsFor(this.ds.task)
    return this.ds.task === 'eval' ? ['corpus', 'queries', 'qrels'] : ['ir-example']
  }

  /** The reader's items after filtering and grouping; `tempDir` is for grouping's spill files (removed after). */
  items(reader: Reader, request: ReadRequest, tempDir: string): AsyncIterable<ReadItem> {
    let items: AsyncIterable<ReadItem> = reader.read(request)
    if (this.filters.length) items = filterRows(items, this.filters)
    if (!this.group) return items
    // what the reader will read, to size grouping's spill partitions
    const files = [...new Set(request.splits.flatMap((s) => (s.path ? [s.path] : request.path ? [request.path] : [])))]
    this.grouping = new Grouping(this.group, this.ds.task as 'ir' | 'eval', tempDir, files)
    return this.grouping.run(items)
  }
}
