/**
 * Reading codiemb's Arrow record files (Arrow IPC *file* format, one record kind per file); the
 * layouts are in arrow-layouts.ts and the writer in arrow-writer.ts, both re-exported here so
 * this module stays the one import for record files. `prepare` writes them, `train` and `eval`
 * stream them.
 *
 * - `readRecords(file, kind?)` yields plain row objects one record batch at a time, so memory is
 *   bounded by the batch size the writer chose, not by the file; each batch is checked against its
 *   recorded checksum first.
 * - `readArrowMeta(file)` answers kind, metadata, fields and row count from the footer.
 * - `RecordFile` (record-file.ts) is the checked, random-access file underneath both.
 */
import {FixedSizeList, Float32, Int32, List, RecordBatch, Utf8, type DataType, type Vector} from 'apache-arrow'
import {META, type RecordKind, type RecordOfKind} from './arrow-layouts.js'
import {RecordFile} from './record-file.js'

export * from './arrow-layouts.js'
export {RecordFile, type OpenRecordFileOptions} from './record-file.js'
export {BATCH_CHECKSUMS_KEY, FOOTER_CHECKSUM_KEY} from './arrow-checksums.js'
export {ArrowRecordWriter, rowsToBatch, type ArrowRecordWriterOptions, type FinishedRecordFile} from './arrow-writer.js'

/** Converts one column value to the plain JS shape documented for the record kinds. */
function plainValue(type: DataType, value: unknown): unknown {
  if (value === null || value === undefined) return null
  if (type instanceof List) {
    const v = value as Vector
    const child = (type as List).valueType
    if (child instanceof Utf8) return v.toArray() as string[]
    if (child instanceof Float32 || child instanceof Int32) return Array.from(v.toArray() as ArrayLike<number>)
    return Array.from(v as Iterable<unknown>, (x) => plainValue(child, x))
  }
  if (type instanceof FixedSizeList) {
    const v = value as Vector
    const arr = v.toArray()
    return arr instanceof Float32Array ? arr.slice() : Float32Array.from(arr as ArrayLike<number>)
  }
  if (typeof value === 'bigint') return Number(value)
  return value
}

/** Turns a record batch into plain row objects (strings, numbers, arrays; Float32Array for vectors). */
export function batchToRows<T = Record<string, unknown>>(batch: RecordBatch): T[] {
  const fields = batch.schema.fields
  const columns = fields.map((_, i) => batch.getChildAt(i)!)
  const rows: T[] = new Array(batch.numRows)
  for (let r = 0; r < batch.numRows; r++) {
    const row: Record<string, unknown> = {}
    for (let c = 0; c < fields.length; c++) row[fields[c].name] = plainValue(fields[c].type, columns[c].get(r))
    rows[r] = row as T
  }
  return rows
}

export interface ArrowMeta {
  file: string
  kind: RecordKind | undefined
  dataset: string | undefined
  task: string | undefined
  instruction: string | undefined
  version: string | undefined
  layout: string | undefined
  /** Every schema metadata key/value. */
  metadata: Record<string, string>
  fields: {name: string; type: string; nullable: boolean}[]
  /** Number of rows (sum over record batches). */
  rows: number
  batches: number
}

/**
 * Streams plain row objects from a codiemb Arrow file, one record batch in memory at a time, each
 * batch checked against the checksum its writer recorded (record-file.ts) before its rows are
 * yielded. When `expectedKind` is given, a file of another kind fails before any row is read.
 */
export async function* readRecords<K extends RecordKind>(file: string, expectedKind?: K): AsyncGenerator<RecordOfKind[K]> {
  const records = await RecordFile.open(file, {kind: expectedKind})
  try {
    for await (const {batch} of records.batches()) {
      for (const row of batchToRows<RecordOfKind[K]>(batch)) yield row
    }
  } finally {
    await records.close()
  }
}

/** Reads every row into an array (for small files: eval sets, tests). */
export async function readAllRecords<K extends RecordKind>(file: string, kind?: K): Promise<RecordOfKind[K][]> {
  const out: RecordOfKind[K][] = []
  for await (const row of readRecords(file, kind)) out.push(row)
  return out
}

/**
 * The schema metadata, fields and row count of a record file. Files written by ArrowRecordWriter
 * carry their row count in the footer, so only the footer is read; for other Arrow files the
 * record batches are counted.
 */
export async function readArrowMeta(file: string): Promise<ArrowMeta> {
  const records = await RecordFile.open(file)
  try {
    const schema = records.schema
    const metadata = records.metadata
    let rows = records.recordedRows ?? 0
    let batches = records.batchCount ?? 0
    if (records.recordedRows === undefined || records.batchCount === undefined) {
      rows = 0
      batches = 0
      for await (const {batch} of records.batches()) {
        rows += batch.numRows
        batches++
      }
    }
    return {
      file,
      kind: records.kind,
      dataset: metadata[META.dataset],
      task: metadata[META.task],
      instruction: metadata[META.instruction],
      version: metadata[META.version],
      layout: metadata[META.layout],
      metadata,
      fields: schema.fields.map((f) => ({name: f.name, type: String(f.type), nullable: f.nullable})),
      rows,
      batches,
    }
  } finally {
    await records.close()
  }
}
