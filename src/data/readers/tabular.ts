/**
 * What the columnar readers (parquet, hf-arrow) share: listing a split's files (a file or a
 * directory of shards), mapping rows to drafts, and the reader itself (`columnarReader`): the two
 * differ only in how one file's rows are decoded. Opening a Parquet file is shared with `beir`.
 */
import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {resolveFields, type FieldMapping} from '../mapping.js'
import {decodeText} from '../text-decoder.js'
import {getPath} from '../text-input.js'
import {DataError, type PreparedKind, type ReadItem, type Reader, type ReadRequest, type Task} from '../types.js'
import {isObject, mappedItem, show, trainingKind} from './common.js'

/**
 * A split's files: the file itself, or the shards in a directory — in `state.json` order when
 * present (a `save_to_disk` split), else sorted, keeping only the files named after the split
 * (`<split>-*`, `<split>.*`, `<split>_*`) when there are any.
 */
export function shardFiles(request: ReadRequest, reader: string, extension: string): {split: string; files: string[]}[] {
  return request.splits.map((split) => {
    const path = split.path ?? request.path
    if (!path) throw new DataError(`dataset ${request.dataset}: reader ${reader} needs a file or directory for split "${split.name}"`)
    if (!existsSync(path)) throw new DataError(`dataset ${request.dataset}, split "${split.name}": not found: ${path}`)
    if (statSync(path).isFile()) return {split: split.name, files: [path]}
    const state = join(path, 'state.json')
    if (existsSync(state)) {
      let parsed: unknown
      try {
        parsed = JSON.parse(decodeText(state, readFileSync(state)))
      } catch (error) {
        if (error instanceof DataError) throw error
        throw new DataError(`malformed JSON: ${(error as Error).message}`, {file: state, line: 1})
      }
      const list = isObject(parsed) && Array.isArray(parsed._data_files) ? parsed._data_files : undefined
      if (list) return {split: split.name, files: list.map((f: {filename?: string}) => join(path, String(f.filename)))}
    }
    const all = readdirSync(path)
      .filter((f) => f.endsWith(extension))
      .sort()
    // Hub repositories keep splits side by side (data/train-00000-of-00002.parquet, data/test-...):
    // when some files are named after the split, only those belong to it.
    const named = all.filter((f) => f.startsWith(`${split.name}-`) || f.startsWith(`${split.name}.`) || f.startsWith(`${split.name}_`))
    const files = (named.length ? named : all).map((f) => join(path, f))
    if (files.length === 0) throw new DataError(`dataset ${request.dataset}, split "${split.name}": no *${extension} files in ${path}`)
    return {split: split.name, files}
  })
}

/** Columns a mapping reads (top-level names). */
export function mappedColumns(mapping: FieldMapping): string[] {
  return [...new Set(Object.values(mapping).map((ref) => String(ref).split('.')[0]))]
}

export function checkColumns(file: string, available: string[], mapping: FieldMapping): void {
  for (const [target, ref] of Object.entries(mapping)) {
    const top = String(ref).split('.')[0]
    if (!available.includes(top))
      throw new DataError(`no column ${JSON.stringify(top)} (wanted for ${target}); the columns are ${available.map((c) => JSON.stringify(c)).join(', ')}`, {file, line: 1})
  }
}

export function resolveTabularFields(request: ReadRequest, reader: string): FieldMapping {
  return resolveFields(request.task, request.fields, reader)
}

/** One decoded row of a columnar file and its 1-based row number (reported as the line). */
export interface ColumnarRow {
  line: number
  row: Record<string, unknown>
}

/**
 * How a columnar format reads one file: its rows, holding at least the top-level columns `mapping`
 * reads, after checking with `checkColumns` that the file has them. Rows come a record batch or
 * row group at a time, so the per-row path has no extra await.
 */
export type ColumnarRows = (file: string, mapping: FieldMapping) => AsyncIterable<ColumnarRow[]>

/**
 * A reader of STS pairs or IR examples from columnar files (`extension`) laid out per split by
 * `shardFiles`, with `fields` mapping record fields to columns; `rowsOf` decodes one file.
 */
export function columnarReader(name: string, extension: string, rowsOf: ColumnarRows): Reader {
  return {
    tasks: ['sts', 'ir'],
    kindsFor(task: Task): PreparedKind[] {
      return [trainingKind(task)]
    },
    async sources(request) {
      return [...new Set(shardFiles(request, name, extension).flatMap((s) => s.files))]
    },
    async *read(request: ReadRequest): AsyncGenerator<ReadItem> {
      const task = request.task as 'ir' | 'sts'
      const mapping = resolveTabularFields(request, name)
      for (const {split, files} of shardFiles(request, name, extension)) {
        for (const file of files) {
          for await (const rows of rowsOf(file, mapping)) {
            for (const {line, row} of rows)
              yield mappedItem(task, mapping, {split, at: {file, line}, value: (ref) => getPath(row, String(ref)), fallbackId: String(line), raw: () => show(row)})
          }
        }
      }
    },
  }
}

/**
 * Opens a Parquet file and reads its footer; a file that is not Parquet is a DataError at line 1.
 * hyparquet is imported here rather than at module top, so a reader that meets no Parquet file
 * (e.g. `beir` on JSON lines) never loads it.
 */
export async function openParquetFile(file: string) {
  const {asyncBufferFromFile, parquetMetadataAsync} = await import('hyparquet')
  try {
    const buffer = await asyncBufferFromFile(file)
    const metadata = await parquetMetadataAsync(buffer)
    return {buffer, metadata}
  } catch (error) {
    throw new DataError(`not a readable Parquet file: ${(error as Error).message}`, {file, line: 1})
  }
}
