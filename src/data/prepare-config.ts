/**
 * The `prepare` configuration section (data-schemas/config/prepare.schema.json) as types, and the
 * checks `prepare` makes on it before reading anything.
 */
import {DataError, TASKS, type Task} from './types.js'
import type {LabelRangeConfig} from './validate.js'
import type {GroupConfig} from './grouping.js'
import type {RowFilter} from './row-filter.js'

/** One dataset of the `prepare` configuration section (data-schemas/config/prepare.schema.json). */
export interface DatasetConfig {
  /** Output folder name and `codiemb.dataset`; unique within a run. */
  name: string
  /** A registered reader (`codiemb list --kind reader`). */
  reader: string
  task: Task
  /** The dataset's file or directory, relative to the data root (readers that read a directory need it). */
  path?: string
  /**
   * Split name -> file, list of files or glob pattern (relative to the data root; split-files.ts), or
   * split names for readers that find files under `path`.
   */
  splits: Record<string, string | string[]> | string[]
  /** Record field -> source column (name, dotted path, or 1-based column number). */
  fields?: Record<string, string | number>
  /** Reader options (validated against the reader's optionsSchema). */
  options?: Record<string, unknown>
  /** Task instruction stored with every row that does not bring its own ("" when absent). */
  instruction?: string
  /** STS label range: {min, max} or {values: [...]}. Required for task sts. */
  labelRange?: LabelRangeConfig
  /** Keep only the rows that pass every comparison (row-filter.ts); the others are counted as unused. */
  filter?: RowFilter[]
  /** Group the rows (read as pairs) by query into IR examples or a retrieval evaluation set (grouping.ts). */
  group?: GroupConfig
}

export interface PrepareConfig {
  dataRoot?: string
  out?: string
  skipInvalid?: boolean
  batchRows?: number
  datasets: DatasetConfig[]
}

export function checkConfig(config: PrepareConfig): void {
  if (!config || !Array.isArray(config.datasets) || config.datasets.length === 0)
    throw new DataError('prepare: expected at least one dataset (prepare.datasets: [...])')
  const seen = new Set<string>()
  config.datasets.forEach((ds, i) => {
    const where = `prepare.datasets[${i}]${ds?.name ? ` (${ds.name})` : ''}`
    if (!ds || typeof ds.name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(ds.name))
      throw new DataError(`${where}.name: expected a folder-safe name (letters, digits, . _ -), got ${JSON.stringify(ds?.name)}`)
    if (seen.has(ds.name)) throw new DataError(`${where}.name: dataset "${ds.name}" is declared twice; names must be unique`)
    seen.add(ds.name)
    if (!TASKS.includes(ds.task)) throw new DataError(`${where}.task: expected one of ${TASKS.join(', ')}, got ${JSON.stringify(ds.task)}`)
    if (typeof ds.reader !== 'string') throw new DataError(`${where}.reader: expected a reader name, got ${JSON.stringify(ds.reader)}`)
    const splits = Array.isArray(ds.splits) ? ds.splits : ds.splits && typeof ds.splits === 'object' ? Object.keys(ds.splits) : undefined
    if (!splits || splits.length === 0) throw new DataError(`${where}.splits: expected split names or {split: file}, got ${JSON.stringify(ds.splits)}`)
    for (const s of splits)
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(s)) throw new DataError(`${where}.splits: split name ${JSON.stringify(s)} is not folder-safe`)
    if (ds.group && ds.task === 'sts') throw new DataError(`${where}.group: grouping makes IR examples (task ir) or a retrieval evaluation set (task eval), not STS pairs`)
    if (ds.task === 'sts' && !ds.labelRange)
      throw new DataError(`${where}.labelRange: an STS dataset must declare its label range, e.g. {min: 0, max: 5} or {values: [0, 1]}`)
  })
}

