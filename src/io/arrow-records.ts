/**
 * Reading codiemb's Arrow record files (Arrow IPC *file* format, one record kind per file); the
 * layouts are in arrow-layouts.ts and the writer in arrow-writer.ts, both re-exported here so
 * this module stays the one import for record files. `prepare` writes them, `train` and `eval`
 * stream them.
 *
 * - `readRecords(file, kind?)` yields plain row objects one record batch at a time, so memory is
 *   bounded by the batch size the writer chose, not by the file.
 * - `readArrowMeta(file)` answers kind, metadata, fields and row count from the footer.
 */
import {open} from 'node:fs/promises'
import {FixedSizeList, Float32, Int32, List, RecordBatch, RecordBatchReader, Schema, Utf8, type DataType, type Vector} from 'apache-arrow'
import {META, RecordFileError, type RecordKind, type RecordOfKind} from './arrow-layouts.js'
import {checkArrowFraming} from './arrow-framing.js'

export * from './arrow-layouts.js'
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

async function openFileReader(file: string) {
  let handle
  try {
    handle = await open(file, 'r')
  } catch (error) {
    throw new RecordFileError(`${file}: cannot open Arrow file: ${(error as Error).message}`)
  }
  try {
    await checkArrowFraming(handle, (await handle.stat()).size)
    const reader = await RecordBatchReader.from(handle)
    await reader.open()
    return {reader, handle}
  } catch (error) {
    await handle.close()
    throw new RecordFileError(`${file}: not an Arrow IPC file: ${(error as Error).message}`)
  }
}

function checkKind(file: string, schema: Schema, expected?: RecordKind): RecordKind | undefined {
  const kind = schema.metadata.get(META.kind) as RecordKind | undefined
  if (expected && kind !== expected)
    throw new RecordFileError(
      `${file}: expected a codiemb "${expected}" record file, but its schema metadata ${META.kind} is ${kind === undefined ? 'missing' : JSON.stringify(kind)}`,
    )
  return kind
}

/**
 * Streams plain row objects from a codiemb Arrow file, one record batch in memory at a time.
 * When `expectedKind` is given, a file of another kind fails before any row is read.
 */
export async function* readRecords<K extends RecordKind>(file: string, expectedKind?: K): AsyncGenerator<RecordOfKind[K]> {
  const {reader, handle} = await openFileReader(file)
  try {
    checkKind(file, reader.schema, expectedKind)
    for await (const batch of reader) {
      for (const row of batchToRows<RecordOfKind[K]>(batch)) yield row
    }
  } finally {
    await reader.cancel().catch(() => {})
    await handle.close().catch(() => {})
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
  const {reader, handle} = await openFileReader(file)
  try {
    const schema = reader.schema
    const metadata = Object.fromEntries(schema.metadata)
    let rows = 0
    let batches = 0
    const stored = Number(metadata[META.rows])
    if (reader.isFile() && metadata[META.rows] !== undefined && Number.isInteger(stored)) {
      rows = stored
      batches = reader.numRecordBatches
    } else {
      for await (const batch of reader) {
        rows += batch.numRows
        batches++
      }
    }
    return {
      file,
      kind: checkKind(file, schema),
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
    await reader.cancel().catch(() => {})
    await handle.close().catch(() => {})
  }
}
