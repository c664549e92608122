/**
 * Row-level random access to a codiemb record file, for readers that must not hold the file in
 * memory (the trainer, eval and mine over corpora of millions of rows).
 *
 * How: an Arrow IPC file's footer lists each record batch's message (offset, metadata length, body
 * length); each message's small metadata lists the batch's field nodes (length, null count) and
 * buffers (offset and length within the body), in depth-first field order: per Utf8 column a
 * validity bitmap, int32 offsets and the UTF-8 bytes; per List column a validity bitmap and int32
 * offsets, then its item column's buffers; per Float32/Int32 column a validity bitmap and values.
 * `RecordRows.open` reads the footer (RecordFile) and each record batch's metadata, nothing else.
 * A row is then read by byte ranges: for a text field its two offsets, then its bytes; for a list
 * of texts its two list offsets, the items' offsets, then the items' bytes. So reading a row costs
 * its own bytes plus 8–16 bytes of offsets per field, whatever the file's size.
 *
 * `columnsOnly(b)` builds record batch `b` from its validity, offset and numeric buffers only, with
 * zeros standing in for text bytes, so the numeric, count and length checks of record-checks.ts
 * (`columnProblems`) and any count a planner needs (an IR row's negatives) come from a start-up
 * pass that reads no text. Such a batch must never be asked for a text value.
 *
 * Each record batch is checked against its recorded checksum (record-file.ts `verifyBatch`) the
 * first time one of its rows is read, before the row is returned. Only the layouts codiemb writes
 * (uncompressed, no dictionaries; Utf8, List, Float32, Int32, FixedSizeList columns) are supported.
 */
import {DataType, Message, RecordBatch, Struct, makeData, type Data, type Field, type Schema} from 'apache-arrow'
import {RecordFileError} from './arrow-layouts.js'
import type {RecordFile} from './record-file.js'

interface Region {
  offset: number
  length: number
}

/** One column's node and buffers within a record batch body (child: a list's item column). */
interface ColumnPlace {
  field: Field
  length: number
  nullCount: number
  validity: Region
  /** Utf8 and List: int32 offsets. */
  offsets?: Region
  /** Utf8: the bytes; numbers: the values. */
  values?: Region
  child?: ColumnPlace
}

/** One record batch: its place in the file, its rows and its columns' buffers. */
export interface BatchPlace {
  index: number
  firstRow: number
  numRows: number
  bodyStart: number
  columns: ColumnPlace[]
}

/** Lays out one field's buffers from the node and buffer lists, depth first. */
function placeColumn(field: Field, nodes: {length: number; nullCount: number}[], buffers: Region[], at: {node: number; buffer: number}, where: string): ColumnPlace {
  const node = nodes[at.node++]
  const next = (): Region => {
    const b = buffers[at.buffer++]
    if (!node || !b) throw new RecordFileError(`${where}: its metadata lists fewer buffers than its schema needs (damaged file?)`)
    return {offset: Number(b.offset), length: Number(b.length)}
  }
  const type = field.type as DataType
  const place: ColumnPlace = {field, length: Number(node?.length ?? 0), nullCount: Number(node?.nullCount ?? 0), validity: next()}
  if (DataType.isUtf8(type)) {
    place.offsets = next()
    place.values = next()
  } else if (DataType.isList(type)) {
    place.offsets = next()
    place.child = placeColumn(type.children[0]!, nodes, buffers, at, where)
  } else if (DataType.isFixedSizeList(type)) {
    place.child = placeColumn(type.children[0]!, nodes, buffers, at, where)
  } else if (DataType.isFloat(type) || DataType.isInt(type)) {
    place.values = next()
  } else throw new RecordFileError(`${where}: column ${field.name} of type ${String(type)} cannot be read by row`)
  return place
}

const decoder = new TextDecoder('utf-8')

/** Bytes read through a RecordRows (its RecordFile's counters). */
export interface ReadStats {
  /** Every byte read, checksum checks included. */
  bytesRead: number
  reads: number
  batchesVerified: number
  /** Of bytesRead, the bytes read to check record batches against their checksums (each batch once). */
  verifiedBytes: number
}

/** Row-level access to an open record file (see the module comment). Closing the RecordFile closes it. */
export class RecordRows {
  /** Zeros standing in for text bytes in `columnsOnly` batches; grown to the largest text buffer seen. */
  private zeros = new Uint8Array(0)
  /** Where `columnsOnly` reads its buffers (reused from call to call), and the part of it in use. */
  private scratch = new Uint8Array(0)
  private scratchUsed = 0

  private constructor(
    readonly file: RecordFile,
    readonly schema: Schema,
    readonly batches: BatchPlace[],
    /** Rows over all record batches. */
    readonly rows: number,
  ) {}

  /** Reads every record batch's metadata (a few hundred bytes each); no data. */
  static async open(file: RecordFile): Promise<RecordRows> {
    const count = file.batchCount
    if (count === undefined) throw new RecordFileError(`${file.file}: an Arrow stream (no footer) cannot be read by row`)
    const batches: BatchPlace[] = []
    let firstRow = 0
    for (let index = 0; index < count; index++) {
      const where = `${file.file}: record batch ${index}`
      const {offset, bodyStart} = file.batchPlace(index)
      const meta = await file.readBytes(offset, bodyStart - offset)
      const view = new DataView(meta.buffer, meta.byteOffset, meta.byteLength)
      // An optional continuation marker (0xFFFFFFFF), the flatbuffer's length, the flatbuffer.
      const skip = view.getInt32(0, true) === -1 ? 8 : 4
      let message: Message
      try {
        message = Message.decode(meta.subarray(skip))
      } catch (error) {
        throw new RecordFileError(`${where}: its metadata cannot be decoded (${(error as Error).message}; damaged file?)`)
      }
      if (!message.isRecordBatch()) throw new RecordFileError(`${where}: the footer points at a message that is not a record batch (damaged file?)`)
      const header = message.header()
      if ((header as unknown as {compression?: unknown}).compression) throw new RecordFileError(`${where}: compressed record batches cannot be read by row`)
      const at = {node: 0, buffer: 0}
      const nodes = header.nodes.map((n) => ({length: Number(n.length), nullCount: Number(n.nullCount)}))
      const columns = file.schema.fields.map((field) => placeColumn(field, nodes, header.buffers, at, where))
      const numRows = Number(header.length)
      const body = message.bodyLength
      const outside = (c: ColumnPlace): boolean =>
        [c.validity, c.offsets, c.values].some((r) => r !== undefined && (r.offset < 0 || r.length < 0 || r.offset + r.length > body)) || (c.child !== undefined && outside(c.child))
      if (columns.some(outside)) throw new RecordFileError(`${where}: a buffer lies outside its ${body}-byte body (damaged file?)`)
      batches.push({index, firstRow, numRows, bodyStart, columns})
      firstRow += numRows
    }
    return new RecordRows(file, file.schema, batches, firstRow)
  }

  get stats(): ReadStats {
    return this.file.stats
  }

  /** The record batch holding file row `row`, and the row's index within it. */
  locate(row: number): {batch: BatchPlace; local: number} {
    if (!(Number.isInteger(row) && row >= 0 && row < this.rows)) throw new RecordFileError(`${this.file.file}: no row ${row} (the file has ${this.rows})`)
    let lo = 0
    let hi = this.batches.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.batches[mid]!.firstRow <= row) lo = mid
      else hi = mid - 1
    }
    const batch = this.batches[lo]!
    return {batch, local: row - batch.firstRow}
  }

  private read(batch: BatchPlace, region: Region, from = 0, length = region.length - from): Promise<Uint8Array> {
    if (from < 0 || length < 0 || from + length > region.length) throw new RecordFileError(`${this.file.file}: record batch ${batch.index}: offsets point outside their buffer (damaged file?)`)
    if (length === 0) return Promise.resolve(new Uint8Array(0))
    return this.file.readBytes(batch.bodyStart + region.offset + from, length)
  }

  /** Int32 values [from, to) of an offsets or values buffer. */
  private async int32s(batch: BatchPlace, region: Region, from: number, to: number): Promise<Int32Array> {
    const bytes = await this.read(batch, region, 4 * from, 4 * (to - from))
    return new Int32Array(bytes.buffer, bytes.byteOffset, to - from)
  }

  /** Region `region` of `batch` read into the next 8-byte aligned part of the scratch buffer (grown, never shrunk). */
  private readScratch(batch: BatchPlace, region: Region): Promise<Uint8Array> {
    const length = region.length
    if (length === 0) return Promise.resolve(new Uint8Array(0))
    const at = this.scratchUsed
    if (at + length > this.scratch.length) {
      // Views already handed out keep the old buffer alive until their batch is dropped.
      this.scratch = new Uint8Array(Math.max(2 * this.scratch.length, 8 * length, 1 << 16))
      this.scratchUsed = 0
      return this.readScratch(batch, region)
    }
    this.scratchUsed = at + Math.ceil(length / 8) * 8
    return this.file.readInto(batch.bodyStart + region.offset, this.scratch.subarray(at, at + length))
  }

  /**
   * Record batch `index` built from its validity, offset and numeric buffers only; every text is
   * zeros of its length (for column checks and counts; see the module comment). Not checksummed.
   * Its buffers are read into a scratch buffer that the next call reuses: use the batch before
   * calling again. (A pass over a multi-GB file so allocates nothing per record batch; fresh
   * buffers for each left tens of MB of freed memory that the process kept.)
   */
  async columnsOnly(index: number): Promise<RecordBatch> {
    const batch = this.batches[index]!
    this.scratchUsed = 0
    const int32s = async (region: Region, count: number): Promise<Int32Array> => {
      if (4 * count > region.length) throw new RecordFileError(`${this.file.file}: record batch ${batch.index}: offsets point outside their buffer (damaged file?)`)
      const bytes = await this.readScratch(batch, region)
      return new Int32Array(bytes.buffer, bytes.byteOffset, count)
    }
    const build = async (c: ColumnPlace): Promise<Data> => {
      const type = c.field.type as DataType
      const nullBitmap = c.nullCount > 0 ? await this.readScratch(batch, c.validity) : undefined
      const base = {type, length: c.length, nullCount: c.nullCount, nullBitmap}
      if (DataType.isUtf8(type)) {
        const valueOffsets = await int32s(c.offsets!, c.length + 1)
        if (this.zeros.length < c.values!.length) this.zeros = new Uint8Array(c.values!.length)
        return makeData({...base, type, valueOffsets, data: this.zeros.subarray(0, c.values!.length)})
      }
      if (DataType.isList(type)) return makeData({...base, type, valueOffsets: await int32s(c.offsets!, c.length + 1), child: await build(c.child!)})
      if (DataType.isFixedSizeList(type)) return makeData({...base, type, child: await build(c.child!)})
      const bytes = await this.readScratch(batch, c.values!)
      const Values = (type as DataType & {ArrayType: {new (b: ArrayBufferLike, o: number, n: number): ArrayLike<number>; BYTES_PER_ELEMENT: number}}).ArrayType
      const data = new Values(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / Values.BYTES_PER_ELEMENT))
      return makeData({...base, type, data} as Parameters<typeof makeData>[0])
    }
    const children = await Promise.all(batch.columns.map(build))
    return new RecordBatch(this.schema, makeData({type: new Struct(this.schema.fields), length: batch.numRows, nullCount: 0, children}))
  }

  /** Whether value `i` of a column is null. */
  private async isNull(batch: BatchPlace, c: ColumnPlace, i: number): Promise<boolean> {
    if (c.nullCount === 0 || c.validity.length === 0) return false
    const [byte] = await this.read(batch, c.validity, i >> 3, 1)
    return (byte! & (1 << (i & 7))) === 0
  }

  /** Values [from, to) of a column, as batchToRows (arrow-records.ts) gives them. */
  private async values(batch: BatchPlace, c: ColumnPlace, from: number, to: number): Promise<unknown[]> {
    const type = c.field.type as DataType
    if (DataType.isUtf8(type)) {
      const offsets = await this.int32s(batch, c.offsets!, from, to + 1)
      const bytes = await this.read(batch, c.values!, offsets[0]!, offsets[to - from]! - offsets[0]!)
      const texts: (string | null)[] = Array.from({length: to - from}, (_, k) => decoder.decode(bytes.subarray(offsets[k]! - offsets[0]!, offsets[k + 1]! - offsets[0]!)))
      if (c.nullCount > 0) for (let i = from; i < to; i++) if (await this.isNull(batch, c, i)) texts[i - from] = null
      return texts
    }
    if (DataType.isList(type) || DataType.isFixedSizeList(type)) {
      const out: unknown[] = []
      for (let i = from; i < to; i++) {
        if (await this.isNull(batch, c, i)) {
          out.push(null)
          continue
        }
        const [a, b] = DataType.isList(type) ? await this.int32s(batch, c.offsets!, i, i + 2) : [i * type.listSize, (i + 1) * type.listSize]
        const items = await this.values(batch, c.child!, a!, b!)
        out.push(DataType.isFixedSizeList(type) ? Float32Array.from(items as number[]) : items)
      }
      return out
    }
    const Values = (type as DataType & {ArrayType: {new (b: ArrayBufferLike, o: number, n: number): ArrayLike<number>; BYTES_PER_ELEMENT: number}}).ArrayType
    const size = Values.BYTES_PER_ELEMENT
    const bytes = await this.read(batch, c.values!, from * size, (to - from) * size)
    const copy = bytes.slice()
    const numbers = Array.from(new Values(copy.buffer, 0, to - from), (v) => (typeof v === 'bigint' ? Number(v) : v))
    const out: unknown[] = []
    for (let i = from; i < to; i++) out.push((await this.isNull(batch, c, i)) ? null : numbers[i - from])
    return out
  }

  /** One row as a plain object (field order and value shapes as batchToRows). Its record batch is checksummed first. */
  async row<T = Record<string, unknown>>(row: number): Promise<T> {
    const {batch, local} = this.locate(row)
    await this.file.verifyBatch(batch.index)
    const values = await Promise.all(batch.columns.map(async (c) => (await this.values(batch, c, local, local + 1))[0]))
    const out: Record<string, unknown> = {}
    batch.columns.forEach((c, k) => (out[c.field.name] = values[k]))
    return out as T
  }

  /** Rows by file row number, in the order asked (read concurrently). */
  readRows<T = Record<string, unknown>>(rows: ArrayLike<number>): Promise<T[]> {
    return Promise.all(Array.from(rows, (r) => this.row<T>(r)))
  }

  /** Texts [from, to) of a Utf8 column (eval, mine: a corpus read one encoding chunk at a time). Checksummed first. */
  async texts(field: string, from: number, to: number): Promise<string[]> {
    const out: string[] = []
    let row = from
    while (row < to) {
      const {batch, local} = this.locate(row)
      await this.file.verifyBatch(batch.index)
      const column = batch.columns.find((c) => c.field.name === field)
      if (!column || !DataType.isUtf8(column.field.type)) throw new RecordFileError(`${this.file.file}: no text column ${field}`)
      const end = Math.min(to, batch.firstRow + batch.numRows)
      out.push(...((await this.values(batch, column, local, end - batch.firstRow)) as string[]))
      row = end
    }
    return out
  }
}
