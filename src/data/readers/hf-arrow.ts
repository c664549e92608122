/**
 * `hf-arrow` reader: Arrow files written by Hugging Face `datasets` (`save_to_disk` directories
 * and cache files, Arrow IPC *stream* format; IPC file format is read too) into STS pairs or IR
 * examples. Streams one record batch at a time.
 *
 * Inputs: per split an `.arrow` file, or a directory: its `state.json` data files in order when
 * present (a `save_to_disk` split), else every `*.arrow` in name order. `fields` maps record fields
 * to column names; ClassLabel columns arrive as their integer ids, int64 as numbers, list columns as
 * lists. Errors name the file and the 1-based row; a damaged file (its framing is checked first,
 * src/io/arrow-framing.ts) or record batch is a DataError, never a hang.
 * Options: none. Relations: `parquet` reads the same datasets as published on the hub.
 */
import {open} from 'node:fs/promises'
import type {FieldMapping} from '../mapping.js'
import {checkArrowFraming} from '../../io/arrow-framing.js'
import {DataError} from '../types.js'
import {checkColumns, type ColumnarRow, columnarReader, mappedColumns} from './tabular.js'

export {hfArrowOptions as optionsSchema} from './options.js'

/** An Arrow cell as plain JS: bigint -> number, vectors -> arrays, structs -> objects. */
function plain(value: unknown): unknown {
  if (value === null || value === undefined) return null
  if (typeof value === 'bigint') return Number(value)
  if (typeof value !== 'object') return value
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<number | bigint>, (x) => plain(x))
  const v = value as {toArray?: () => unknown; toJSON?: () => unknown; [Symbol.iterator]?: unknown}
  if (typeof v.toArray === 'function' && typeof v[Symbol.iterator] === 'function') return Array.from(v as Iterable<unknown>, plain)
  if (typeof v.toJSON === 'function') {
    const o = v.toJSON() as Record<string, unknown>
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, plain(x)]))
  }
  return value
}

/**
 * One Arrow file's rows, record batch by record batch, holding only the mapped columns. The file
 * handle is closed however the caller stops iterating.
 */
async function* arrowRows(file: string, mapping: FieldMapping): AsyncGenerator<ColumnarRow[]> {
  const {RecordBatchReader} = await import('apache-arrow')
  const handle = await open(file, 'r')
  try {
    let batches
    try {
      await checkArrowFraming(handle, (await handle.stat()).size)
      batches = await RecordBatchReader.from(handle)
      await batches.open()
    } catch (error) {
      throw new DataError(`not an Arrow file: ${(error as Error).message}`, {file, line: 1})
    }
    if (!batches.schema) throw new DataError('not an Arrow file: it holds no schema (empty or truncated)', {file, line: 1})
    const names = batches.schema.fields.map((f) => f.name)
    checkColumns(file, names, mapping)
    const columns = mappedColumns(mapping)
    const wanted = names.map((n, i) => [n, i] as const).filter(([n]) => columns.includes(n))
    let rowNo = 0
    const iterator = batches[Symbol.asyncIterator]()
    for (;;) {
      let next
      try {
        next = await iterator.next()
      } catch (error) {
        // a truncated or damaged record batch: the rows before it were read
        throw new DataError(`not a readable Arrow file after row ${rowNo}: ${(error as Error).message}`, {file, line: rowNo + 1})
      }
      if (next.done) break
      const batch = next.value
      const cols = wanted.map(([n, i]) => [n, batch.getChildAt(i)!] as const)
      const rows: ColumnarRow[] = []
      for (let r = 0; r < batch.numRows; r++) {
        const row: Record<string, unknown> = {}
        for (const [n, col] of cols) row[n] = plain(col.get(r))
        rows.push({line: ++rowNo, row})
      }
      yield rows
    }
  } finally {
    await handle.close().catch(() => {})
  }
}

export const reader = columnarReader('hf-arrow', '.arrow', arrowRows)
