/** Small helpers the reader modules share. */
import {draftFromFields, MISSING, type FieldMapping, type FieldRef} from '../mapping.js'
import {textEncoding} from '../text-decoder.js'
import {requireFile} from '../text-input.js'
import {DataError, type PreparedKind, type ReadItem, type Reader, type ReadRequest, type SourceLocation, type SplitSource, type Task} from '../types.js'

/** The record kind the training-data readers yield for a task: IR examples for "ir", else STS pairs. */
export function trainingKind(task: Task): 'ir-example' | 'sts-pair' {
  return task === 'ir' ? 'ir-example' : 'sts-pair'
}

/** The file a split maps to; fails naming the dataset and split when the configuration gave none. */
export function splitFile(request: ReadRequest, split: SplitSource, reader: string): string {
  if (!split.path)
    throw new DataError(
      `dataset ${request.dataset}: reader ${reader} needs a file for split "${split.name}" (splits: {${split.name}: path/to/file})`,
    )
  requireFile(split.path, `dataset ${request.dataset}, split "${split.name}": file`)
  return split.path
}

/**
 * The text encoding a request's `encoding` option names (default utf-8), checked against the labels
 * TextDecoder knows; an unknown one is a DataError naming the dataset and the option.
 */
export function encodingOf(request: ReadRequest): string {
  return textEncoding(request.options.encoding ?? 'utf-8', `dataset ${request.dataset}: options.encoding`)
}

/** Every split's file (for `sources()`). */
export function splitFiles(request: ReadRequest, reader: string): string[] {
  encodingOf(request)
  return [...new Set(request.splits.map((s) => splitFile(request, s, reader)))]
}

/**
 * A reader of STS pairs or IR examples (the kind `trainingKind` names for the task) from one file
 * per split, `name` being the reader's name in errors: its sources are the splits' files.
 */
export function splitFileReader(name: string, tasks: readonly Task[], read: (request: ReadRequest) => AsyncIterable<ReadItem>): Reader {
  return {
    tasks,
    kindsFor: (task: Task): PreparedKind[] => [trainingKind(task)],
    sources: async (request) => splitFiles(request, name),
    read,
  }
}

/** One row of a source whose fields a dataset's `fields` mapping names (a column, a JSON key or path). */
export interface MappedRow {
  split: string
  at: SourceLocation
  /** The value a field reference names; undefined when the row lacks it. */
  value: (ref: FieldRef) => unknown
  /** The id when the mapping gives none (the line, or an array element's number). */
  fallbackId: string
  /** The row as a reject shows it. */
  raw: () => string
}

/** A mapped row as an item: its draft, or a reject naming the mapped field it lacks. */
export function mappedItem(task: 'ir' | 'sts', mapping: FieldMapping, row: MappedRow): ReadItem {
  const kind = trainingKind(task)
  const built = draftFromFields(task, mapping, (ref) => {
    const v = row.value(ref)
    return v === undefined ? MISSING : v
  })
  if (built.reason !== undefined) return {type: 'reject', kind, split: row.split, at: row.at, reason: built.reason, raw: row.raw()}
  const draft = built.draft as unknown as Record<string, unknown>
  draft.id ??= row.fallbackId
  const item = {type: 'row', kind, split: row.split, at: row.at, row: draft}
  // `raw` is only read when prepare rejects the row: built on demand, not for every row.
  Object.defineProperty(item, 'raw', {get: row.raw, enumerable: true})
  Object.defineProperty(item, 'source', {value: row.value})
  return item as unknown as ReadItem
}

/** A short JSON rendering of a value for reasons. */
export function show(value: unknown): string {
  const s = JSON.stringify(value)
  return s === undefined ? String(value) : s.length > 80 ? `${s.slice(0, 80)}…` : s
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
