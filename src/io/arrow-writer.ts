/**
 * Writing codiemb's Arrow record files (Arrow IPC *file* format, one record kind per file, layouts
 * in arrow-layouts.ts). `ArrowRecordWriter` buffers rows into record batches and writes them to a
 * temporary file beside the target (src/core/fs-atomic.ts); `finish()` fsyncs and renames it into
 * place, `abort()` deletes it. A crashed or failed run therefore never leaves a file under the
 * final name that looks complete.
 */
import {createHash} from 'node:crypto'
import {
  AsyncByteQueue,
  Field,
  Float32,
  Int32,
  List,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  Utf8,
  makeBuilder,
  makeData,
  type Data,
} from 'apache-arrow'
import {AtomicFile} from '../core/fs-atomic.js'
import {packageVersion} from '../core/version.js'
import {BATCH_CHECKSUMS_KEY, BatchHasher, FOOTER_CHECKSUM_KEY, footerDigest, type BatchExtent} from './arrow-checksums.js'
import {META, RECORDS_VERSION, RecordFileError, recordFields, type RecordKind, type RecordOfKind} from './arrow-layouts.js'

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
 * the temporary file (synchronously, so memory stays bounded however fast rows arrive), into a
 * running sha256 of the whole file and, while a record batch is being written, into that batch's
 * digest (arrow-checksums.ts).
 */
class FileSink extends AsyncByteQueue {
  private pending: Uint8Array[] = []
  private pendingBytes = 0
  readonly hash = createHash('sha256')
  /** The digest of the record batch being written, between its start and end. */
  batch: BatchHasher | undefined
  bytes = 0
  constructor(private readonly out: AtomicFile) {
    super()
  }
  override write(value: Uint8Array | ArrayBufferView | ArrayBuffer): void {
    const chunk = value instanceof Uint8Array ? value : ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : new Uint8Array(value as ArrayBuffer)
    if (chunk.byteLength === 0) return
    this.hash.update(chunk)
    this.batch?.update(chunk)
    this.bytes += chunk.byteLength
    // Arrow hands over many small pieces (headers, padding); batch them into ~1 MiB writes.
    this.pending.push(chunk.slice())
    this.pendingBytes += chunk.byteLength
    if (this.pendingBytes >= 1 << 20) this.flush()
  }
  flush(): void {
    if (this.pendingBytes === 0) return
    this.out.write(this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes))
    this.pending = []
    this.pendingBytes = 0
  }
}

/**
 * Streams rows of one record kind into an Arrow IPC file, atomically: rows go to a temporary
 * sibling of `file` (fs-atomic.ts's naming), and `finish()` renames it to `file` only once the
 * footer is written and synced. Call `abort()` on failure (it deletes the temporary file).
 */
export class ArrowRecordWriter<K extends RecordKind = RecordKind> {
  readonly schema: Schema
  private readonly out: AtomicFile
  private readonly sink: FileSink
  private readonly writer: RecordBatchFileWriter
  private readonly batchRows: number
  private buffer: RecordOfKind[K][] = []
  private rowCount = 0
  /** Where each record batch sits in the file and its digest, in order (for the footer's checksums). */
  private readonly batches: (BatchExtent & {digest: string})[] = []
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
      if (k !== META.kind && k !== META.layout && k !== META.rows && k !== BATCH_CHECKSUMS_KEY && k !== FOOTER_CHECKSUM_KEY) metadata.set(k, v)
    }
    if (kind === 'embeddings') metadata.set('codiemb.dim', String(options.dim))
    this.schema = new Schema(recordFields(kind, options.dim), metadata)
    this.batchRows = Math.max(1, Math.floor(options.batchRows ?? 4096))
    this.out = AtomicFile.create(file)
    this.sink = new FileSink(this.out)
    // autoDestroy: finish() closes the sink after writing the footer.
    this.writer = new RecordBatchFileWriter()
    this.writer.reset(this.sink as unknown as AsyncByteQueue, this.schema)
  }

  /** Where rows go until finish(). */
  get tempFile(): string {
    return this.out.tempPath
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
    const batch = rowsToBatch(this.schema, rows as unknown as Record<string, unknown>[])
    // Arrow's file writer emits exactly the batch's footer block (message, padding, body) here.
    const offset = this.sink.bytes
    this.sink.batch = new BatchHasher()
    try {
      this.writer.write(batch)
      this.batches.push({offset, length: this.sink.bytes - offset, digest: this.sink.batch.digest()})
    } finally {
      this.sink.batch = undefined
    }
    this.sink.flush()
  }

  /** Writes the footer, syncs and renames the temporary file to `file`. */
  async finish(): Promise<FinishedRecordFile> {
    if (this.state !== 'open') throw new RecordFileError(`${this.file}: writer is ${this.state}`)
    try {
      this.flushBatch()
      // The footer repeats the schema; giving it the row count lets readArrowMeta answer without
      // reading batches, and the checksums let a reader check each batch as it reads it.
      const metadata = this.schema.metadata
      metadata.set(META.rows, String(this.rowCount))
      metadata.set(BATCH_CHECKSUMS_KEY, JSON.stringify(this.batches.map((b) => b.digest)))
      metadata.set(FOOTER_CHECKSUM_KEY, footerDigest(metadata, this.schema.fields, this.batches))
      this.writer.finish()
      this.sink.flush()
      this.out.commit({fsync: true})
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
    this.out.abort()
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
