/**
 * `parquet` reader: Parquet files (the Hugging Face hub's dataset format) into STS pairs or IR
 * examples, via hyparquet (pure JavaScript). Reads one row group at a time, and only the columns
 * `fields` maps, so memory is bounded by the largest row group.
 *
 * Inputs: per split a `.parquet` file or a directory of shards (read in name order). `fields` maps
 * record fields to column names (dotted paths reach struct members); list columns (e.g. `pos`)
 * become text lists. Errors name the file and the 1-based row ("file.parquet:12").
 * Compression: snappy (built in), gzip and brotli (node:zlib); zstd needs Node >= 22.15.
 * Options: none. Relations: `hf-arrow` reads the same datasets as saved by `datasets`.
 */
import {brotliDecompressSync, gunzipSync} from 'node:zlib'
import * as zlib from 'node:zlib'
import type {FieldMapping} from '../mapping.js'
import {DataError} from '../types.js'
import {checkColumns, type ColumnarRow, columnarReader, mappedColumns, openParquetFile} from './tabular.js'

export {parquetOptions as optionsSchema} from './options.js'

const zstd = (zlib as unknown as {zstdDecompressSync?: (b: Uint8Array) => Buffer}).zstdDecompressSync
const compressors = {
  GZIP: (input: Uint8Array) => new Uint8Array(gunzipSync(input)),
  BROTLI: (input: Uint8Array) => new Uint8Array(brotliDecompressSync(input)),
  ...(zstd ? {ZSTD: (input: Uint8Array) => new Uint8Array(zstd(input))} : {}),
}

function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value)
  if (Array.isArray(value)) return value.map(plain)
  return value
}

/** One Parquet file's rows, a row group at a time, holding only the mapped columns. */
async function* parquetRows(file: string, mapping: FieldMapping): AsyncGenerator<ColumnarRow[]> {
  const {parquetReadObjects, parquetSchema} = await import('hyparquet')
  const columns = mappedColumns(mapping)
  const {buffer, metadata} = await openParquetFile(file)
  checkColumns(file, parquetSchema(metadata).children.map((c) => c.element.name), mapping)
  let rowStart = 0
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows)
    let rows: Record<string, unknown>[]
    try {
      rows = await parquetReadObjects({file: buffer, metadata, columns, rowStart, rowEnd, compressors})
    } catch (error) {
      throw new DataError(`cannot decode rows ${rowStart + 1}-${rowEnd}: ${(error as Error).message}`, {file, line: rowStart + 1})
    }
    yield rows.map((decoded, i) => {
      const row: Record<string, unknown> = {}
      for (const c of columns) row[c] = plain(decoded[c])
      return {line: rowStart + i + 1, row}
    })
    rowStart = rowEnd
  }
}

export const reader = columnarReader('parquet', '.parquet', parquetRows)
