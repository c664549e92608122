/**
 * Reading and writing codiemb's Arrow record files (Arrow IPC *file* format, one record kind per
 * file). The layouts are fixed and documented in data-schemas/README.md; `prepare` writes them,
 * `train` and `eval` stream them.
 *
 * - `readRecords(file, kind?)` yields plain row objects one record batch at a time, so memory is
 *   bounded by the batch size the writer chose, not by the file.
 * - `ArrowRecordWriter` buffers rows into record batches and writes them to a temporary file beside
 *   the target; `finish()` fsyncs and renames it into place, `abort()` deletes it. A crashed or
 *   failed run therefore never leaves a file under the final name that looks complete.
 */
import {createHash, randomBytes} from 'node:crypto'
import {closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync} from 'node:fs'
import {open} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {
  AsyncByteQueue,
  Field,
  FixedSizeList,
  Float32,
  Int32,
  List,
  RecordBatch,
  RecordBatchFileWriter,
  RecordBatchReader,
  Schema,
  Struct,
  Utf8,
  makeBuilder,
  makeData,
  type Data,
  type DataType,
  type Vector,
} from 'apache-arrow'
import {packageVersion} from '../core/version.js'
import {CodiembError} from '../core/errors.js'

export const RECORD_KINDS = ['ir-example', 'sts-pair', 'corpus', 'queries', 'qrels', 'embeddings'] as const
export type RecordKind = (typeof RECORD_KINDS)[number]

/** Version of the record layouts (metadata `codiemb.layout`); bumped when a layout changes incompatibly. */
export const RECORDS_VERSION = '1'

export interface IrExampleRecord {
  id: string
  query: string
  /** Task instruction ("" when none). */
  instruction: string
  positives: string[]
  negatives: string[]
  positive_scores: number[] | null
  negative_scores: number[] | null
}
export interface StsPairRecord {
  id: string
  text1: string
  text2: string
  /** Normalised to [0, 1] from the dataset's declared label range. */
  score: number
  /** The label as the source gave it. */
  raw_score: number
  instruction: string
}
export interface CorpusRecord {
  id: string
  title: string
  text: string
}
export interface QueryRecord {
  id: string
  text: string
  instruction: string
}
export interface QrelRecord {
  query_id: string
  corpus_id: string
  score: number
}
export interface EmbeddingRecord {
  id: string
  text: string
  vector: Float32Array
}
export interface RecordOfKind {
  'ir-example': IrExampleRecord
  'sts-pair': StsPairRecord
  corpus: CorpusRecord
  queries: QueryRecord
  qrels: QrelRecord
  embeddings: EmbeddingRecord
}
export type AnyRecord = RecordOfKind[RecordKind]

/** Metadata keys every codiemb record file carries in its Arrow schema. */
export const META = {
  kind: 'codiemb.kind',
  dataset: 'codiemb.dataset',
  task: 'codiemb.task',
  instruction: 'codiemb.instruction',
  /** The codiemb package version that wrote the file. */
  version: 'codiemb.version',
  /** RECORDS_VERSION of the layout. */
  layout: 'codiemb.layout',
  /** Row count, written into the footer's copy of the schema when the file is finished. */
  rows: 'codiemb.rows',
} as const

export class RecordFileError extends CodiembError {
  override name = 'RecordFileError'
}

const utf8 = () => new Utf8()
const listOf = (child: DataType, nullable = false) => new List(new Field('item', child, nullable))

/** The Arrow schema (without metadata) of a record kind. `dim` is required for `embeddings`. */
export function recordFields(kind: RecordKind, dim?: number): Field[] {
  switch (kind) {
    case 'ir-example':
      return [
        new Field('id', utf8(), false),
        new Field('query', utf8(), false),
        new Field('instruction', utf8(), false),
        new Field('positives', listOf(utf8()), false),
        new Field('negatives', listOf(utf8()), false),
        new Field('positive_scores', listOf(new Float32()), true),
        new Field('negative_scores', listOf(new Float32()), true),
      ]
    case 'sts-pair':
      return [
        new Field('id', utf8(), false),
        new Field('text1', utf8(), false),
        new Field('text2', utf8(), false),
        new Field('score', new Float32(), false),
        new Field('raw_score', new Float32(), false),
        new Field('instruction', utf8(), false),
      ]
    case 'corpus':
      return [new Field('id', utf8(), false), new Field('title', utf8(), false), new Field('text', utf8(), false)]
    case 'queries':
      return [new Field('id', utf8(), false), new Field('text', utf8(), false), new Field('instruction', utf8(), false)]
    case 'qrels':
      return [new Field('query_id', utf8(), false), new Field('corpus_id', utf8(), false), new Field('score', new Int32(), false)]
    case 'embeddings': {
      if (!Number.isInteger(dim) || (dim as number) < 1) throw new RecordFileError(`embeddings need a vector dimension >= 1, got ${dim}`)
      return [
        new Field('id', utf8(), false),
        new Field('text', utf8(), false),
        new Field('vector', new FixedSizeList(dim as number, new Field('item', new Float32(), false)), false),
      ]
    }
    default:
      throw new RecordFileError(`unknown record kind ${JSON.stringify(kind)}; expected one of ${RECORD_KINDS.join(', ')}`)
  }
}

export interface ArrowRecordWriterOptions {
  /** Schema metadata besides codiemb.kind/version (dataset, task, instruction, sources, ...). */
  metadata?: Record<string, string>
  /** Vector dimension, for `embeddings`. */
  dim?: number
  /** Rows per record batch (default 4096): the unit readers hold in memory. */
  batchRows?: number
}

export interface FinishedRecordFile {
  file: string
  kind: RecordKind
  rows: number
  bytes: number
  sha256: string
}

/**
 * The writer's byte sink: what Arrow's file writer emits goes through a small buffer straight to
 * the temporary file (synchronously, so memory stays bounded however fast rows arrive) and into a
 * running sha256.
 */
class FileSink extends AsyncByteQueue {
  private pending: Uint8Array[] = []
  private pendingBytes = 0
  readonly hash = createHash('sha256')
  bytes = 0
  constructor(private readonly fd: number) {
    super()
  }
  override write(value: Uint8Array | ArrayBufferView | ArrayBuffer): void {
    const chunk = value instanceof Uint8Array ? value : ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : new Uint8Array(value as ArrayBuffer)
    if (chunk.byteLength === 0) return
    this.hash.update(chunk)
    this.bytes += chunk.byteLength
    // Arrow hands over many small pieces (headers, padding); batch them into ~1 MiB writes.
    this.pending.push(chunk.slice())
    this.pendingBytes += chunk.byteLength
    if (this.pendingBytes >= 1 << 20) this.flush()
  }
  flush(): void {
    if (this.pendingBytes === 0) return
    const all = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes)
    let off = 0
    while (off < all.byteLength) off += writeSync(this.fd, all, off, all.byteLength - off)
    this.pending = []
    this.pendingBytes = 0
  }
}

/**
 * Streams rows of one record kind into an Arrow IPC file, atomically: rows go to
 * `.<name>.<random>.partial` beside `file`, and `finish()` renames it to `file` only once the
 * footer is written and synced. Call `abort()` on failure (it deletes the temporary file).
 */
export class ArrowRecordWriter<K extends RecordKind = RecordKind> {
  readonly schema: Schema
  readonly tempFile: string
  private readonly fd: number
  private readonly sink: FileSink
  private readonly writer: RecordBatchFileWriter
  private readonly batchRows: number
  private buffer: RecordOfKind[K][] = []
  private rowCount = 0
  private state: 'open' | 'finished' | 'aborted' = 'open'

  constructor(
    readonly file: string,
    readonly kind: K,
    options: ArrowRecordWriterOptions = {},
  ) {
    const metadata = new Map<string, string>([
      [META.kind, kind],
      [META.version, packageVersion()],
      [META.layout, RECORDS_VERSION],
    ])
    for (const [k, v] of Object.entries(options.metadata ?? {})) {
      if (typeof v !== 'string') throw new RecordFileError(`metadata ${k}: expected a string, got ${typeof v}`)
      if (k !== META.kind && k !== META.layout && k !== META.rows) metadata.set(k, v)
    }
    if (kind === 'embeddings') metadata.set('codiemb.dim', String(options.dim))
    this.schema = new Schema(recordFields(kind, options.dim), metadata)
    this.batchRows = Math.max(1, Math.floor(options.batchRows ?? 4096))
    this.tempFile = join(dirname(file), `.${basename(file)}.${randomBytes(4).toString('hex')}.partial`)
    this.fd = openSync(this.tempFile, 'wx')
    this.sink = new FileSink(this.fd)
    // autoDestroy: finish() closes the sink after writing the footer.
    this.writer = new RecordBatchFileWriter()
    this.writer.reset(this.sink as unknown as AsyncByteQueue, this.schema)
  }

  /** Rows accepted so far. */
  get rows(): number {
    return this.rowCount
  }

  /** Adds one row; a full batch is encoded and written to disk before this returns. */
  write(row: RecordOfKind[K]): void {
    if (this.state !== 'open') throw new RecordFileError(`${this.file}: writer is ${this.state}`)
    this.buffer.push(row)
    this.rowCount++
    if (this.buffer.length >= this.batchRows) this.flushBatch()
  }

  /** Writes every row of an (async) iterable. */
  async writeAll(rows: Iterable<RecordOfKind[K]> | AsyncIterable<RecordOfKind[K]>): Promise<void> {
    for await (const row of rows) this.write(row)
  }

  private flushBatch(): void {
    if (this.buffer.length === 0) return
    const rows = this.buffer
    this.buffer = []
    this.writer.write(rowsToBatch(this.schema, rows as unknown as Record<string, unknown>[]))
    this.sink.flush()
  }

  /** Writes the footer, syncs and renames the temporary file to `file`. */
  async finish(): Promise<FinishedRecordFile> {
    if (this.state !== 'open') throw new RecordFileError(`${this.file}: writer is ${this.state}`)
    try {
      this.flushBatch()
      // The footer repeats the schema; giving it the row count lets readArrowMeta answer without reading batches.
      this.schema.metadata.set(META.rows, String(this.rowCount))
      this.writer.finish()
      this.sink.flush()
      fsyncSync(this.fd)
      closeSync(this.fd)
      renameSync(this.tempFile, this.file)
      this.state = 'finished'
    } catch (error) {
      this.abort()
      throw error
    }
    return {file: this.file, kind: this.kind, rows: this.rowCount, bytes: this.sink.bytes, sha256: this.sink.hash.digest('hex')}
  }

  /** Discards everything written; the target file is left as it was. Safe to call twice. */
  abort(): void {
    if (this.state !== 'open') return
    this.state = 'aborted'
    try {
      closeSync(this.fd)
    } catch {
      /* already closed */
    }
    rmSync(this.tempFile, {force: true})
  }
}

/** Utf8 data for strings: one byte buffer and Int32 offsets, written with Buffer.write (much faster than a builder). */
function utf8Data(values: string[]) {
  const offsets = new Int32Array(values.length + 1)
  let total = 0
  for (let i = 0; i < values.length; i++) {
    total += Buffer.byteLength(values[i], 'utf8')
    offsets[i + 1] = total
  }
  if (total > 0x7fffffff) throw new RecordFileError('a record batch holds more than 2 GiB of text; use smaller batchRows')
  const bytes = Buffer.allocUnsafe(total)
  for (let i = 0; i < values.length; i++) bytes.write(values[i], offsets[i], 'utf8')
  return makeData({type: new Utf8(), length: values.length, nullCount: 0, valueOffsets: offsets, data: new Uint8Array(bytes.buffer, bytes.byteOffset, total)})
}

function validityBitmap(present: boolean[]): {nullBitmap: Uint8Array; nullCount: number} {
  const nullBitmap = new Uint8Array(((present.length + 63) >> 6) << 3)
  let nullCount = 0
  for (let i = 0; i < present.length; i++) {
    if (present[i]) nullBitmap[i >> 3] |= 1 << (i & 7)
    else nullCount++
  }
  return {nullBitmap, nullCount}
}

function requireValue(field: Field, value: unknown, row: number): void {
  if ((value === null || value === undefined) && !field.nullable) throw new RecordFileError(`row ${row} of batch: field "${field.name}" must not be null`)
}

/** Column data for the field types of the record layouts; anything else goes through an Arrow builder. */
function columnData(field: Field, rows: Record<string, unknown>[]): Data {
  const type = field.type
  const n = rows.length
  const name = field.name
  if (type instanceof Utf8) {
    const values = new Array<string>(n)
    for (let i = 0; i < n; i++) {
      const v = rows[i][name]
      requireValue(field, v, i)
      if (typeof v !== 'string') throw new RecordFileError(`row ${i} of batch: field "${name}" must be a string, got ${typeof v}`)
      values[i] = v
    }
    return utf8Data(values)
  }
  if (type instanceof Float32 || type instanceof Int32) {
    const data = type instanceof Float32 ? new Float32Array(n) : new Int32Array(n)
    for (let i = 0; i < n; i++) {
      const v = rows[i][name]
      requireValue(field, v, i)
      if (typeof v !== 'number') throw new RecordFileError(`row ${i} of batch: field "${name}" must be a number, got ${typeof v}`)
      data[i] = v
    }
    return makeData({type, length: n, nullCount: 0, data} as never)
  }
  if (type instanceof List && (type.valueType instanceof Utf8 || type.valueType instanceof Float32)) {
    const offsets = new Int32Array(n + 1)
    const present = new Array<boolean>(n)
    const flat: unknown[] = []
    for (let i = 0; i < n; i++) {
      const v = rows[i][name]
      requireValue(field, v, i)
      present[i] = v !== null && v !== undefined
      if (present[i]) {
        if (!Array.isArray(v)) throw new RecordFileError(`row ${i} of batch: field "${name}" must be a list`)
        for (const x of v) flat.push(x)
      }
      offsets[i + 1] = flat.length
    }
    const childField = type.children[0] as Field
    const child = columnData(childField, flat.map((x) => ({[childField.name]: x})))
    const {nullBitmap, nullCount} = validityBitmap(present)
    return makeData({type, length: n, nullCount, nullBitmap: nullCount ? nullBitmap : undefined, valueOffsets: offsets, child} as never)
  }
  const builder = makeBuilder({type, nullValues: [null, undefined]})
  for (let i = 0; i < n; i++) {
    const v = rows[i][name]
    requireValue(field, v, i)
    builder.append(v)
  }
  return builder.finish().flush()
}

/** Encodes plain row objects into one record batch of `schema`. */
export function rowsToBatch(schema: Schema, rows: Record<string, unknown>[]): RecordBatch {
  const children = schema.fields.map((field) => columnData(field, rows))
  const data = makeData({type: new Struct(schema.fields), length: rows.length, nullCount: 0, children})
  return new RecordBatch(schema, data)
}

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
