/** Small helpers the reader modules share. */
import {DataError, type PreparedKind, type ReadItem, type Reader, type ReadRequest, type SplitSource, type Task} from '../types.js'
import {requireFile} from '../text-input.js'

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

/** Every split's file (for `sources()`). */
export function splitFiles(request: ReadRequest, reader: string): string[] {
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

/** A short JSON rendering of a value for reasons. */
export function show(value: unknown): string {
  const s = JSON.stringify(value)
  return s === undefined ? String(value) : s.length > 80 ? `${s.slice(0, 80)}…` : s
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
