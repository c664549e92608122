/**
 * A structural check of an Arrow IPC file, made before apache-arrow reads it, so that a damaged
 * file is an error instead of a hang or an out-of-memory crash.
 *
 * Why: apache-arrow (21) trusts what a file says about itself. A message length prefix that reads
 * as a negative number moves its reader backwards and it reads the same bytes for ever; a
 * flatbuffer vector length flipped to millions makes it build millions of objects; a record batch
 * claiming billions of rows makes every caller loop over them. This check reads only the framing
 * and the (small) flatbuffer metadata, never the data, and fails at the first value that cannot be.
 *
 * What is checked:
 * - the message stream (the streaming format; the file format holds the same after its 8-byte
 *   "ARROW1\0\0" magic): per message an optional continuation marker 0xFFFFFFFF, an int32 metadata
 *   length, the metadata, and a body of the length the metadata gives — every length >= 0 and
 *   inside the file; a length of 0 ends the stream;
 * - each message's metadata as a flatbuffer: every table, string and vector inside the metadata
 *   bytes (Message, Schema with its fields at any depth, RecordBatch, DictionaryBatch);
 * - a record batch's row count and field-node lengths: at most 8 per body byte (every column but
 *   the Null type stores at least a bit per row), and at most 65,536 when the body is empty (no
 *   bound for compressed batches); its buffers inside its body;
 * - the file format's footer: its length, its schema, and every block naming a message of the
 *   stream above with that message's lengths.
 */
import type {FileHandle} from 'node:fs/promises'

const MAGIC = 'ARROW1'

/** A damaged file: what is wrong, and where. */
function damaged(where: string, what: string): Error {
  return new Error(`${where}: ${what} (the file is damaged or truncated)`)
}

/**
 * Bounds-checked reading of one flatbuffer (little-endian; tables reached through a vtable).
 * Every accessor throws when what it reads would lie outside the buffer.
 */
class FlatBuffer {
  constructor(
    private readonly buf: Buffer,
    private readonly where: string,
  ) {}

  private need(pos: number, bytes: number): void {
    if (!(pos >= 0 && pos + bytes <= this.buf.length)) throw damaged(this.where, `metadata reference to byte ${pos} outside its ${this.buf.length} bytes`)
  }

  private u32(pos: number): number {
    this.need(pos, 4)
    return this.buf.readUInt32LE(pos)
  }

  /** The root table's position. */
  root(): number {
    return this.table(0)
  }

  /** The table an offset at `pos` points to (its vtable checked). */
  private table(pos: number): number {
    const t = pos + this.u32(pos)
    this.need(t, 4)
    const vtable = t - this.buf.readInt32LE(t)
    this.need(vtable, 4)
    const size = this.buf.readUInt16LE(vtable)
    if (size < 4 || size % 2) throw damaged(this.where, `a metadata table with a vtable of ${size} bytes`)
    this.need(vtable, size)
    return t
  }

  /** Where field `i` of table `t` is, or undefined when absent. */
  private field(t: number, i: number): number | undefined {
    const vtable = t - this.buf.readInt32LE(t)
    const size = this.buf.readUInt16LE(vtable)
    if (4 + 2 * i >= size) return undefined
    const o = this.buf.readUInt16LE(vtable + 4 + 2 * i)
    return o === 0 ? undefined : t + o
  }

  /** A sub-table (field `i` of `t`), or undefined. */
  child(t: number, i: number): number | undefined {
    const f = this.field(t, i)
    return f === undefined ? undefined : this.table(f)
  }

  /** A scalar field as a number (int8/16/32/64, unsigned when `unsigned`), or `absent`. */
  int(t: number, i: number, bytes: 1 | 2 | 4 | 8, absent = 0): number {
    const f = this.field(t, i)
    if (f === undefined) return absent
    this.need(f, bytes)
    return bytes === 8 ? Number(this.buf.readBigInt64LE(f)) : bytes === 4 ? this.buf.readInt32LE(f) : bytes === 2 ? this.buf.readInt16LE(f) : this.buf.readUInt8(f)
  }

  /** A vector field: its element count and where its elements start (each `size` bytes), checked to fit. */
  vector(t: number, i: number, size: number): {length: number; start: number} {
    const f = this.field(t, i)
    if (f === undefined) return {length: 0, start: 0}
    const v = f + this.u32(f)
    const length = this.u32(v)
    this.need(v + 4, length * size)
    return {length, start: v + 4}
  }

  /** The tables of a vector of tables (field `i` of `t`). */
  tables(t: number, i: number): number[] {
    const {length, start} = this.vector(t, i, 4)
    return Array.from({length}, (_, k) => this.table(start + 4 * k))
  }

  /** Checks a string field fits. */
  string(t: number, i: number): void {
    this.vector(t, i, 1)
  }

  /** A 64-bit integer at an absolute position (a struct member). */
  long(pos: number): number {
    this.need(pos, 8)
    return Number(this.buf.readBigInt64LE(pos))
  }

  /** A 32-bit integer at an absolute position (a struct member). */
  int32At(pos: number): number {
    this.need(pos, 4)
    return this.buf.readInt32LE(pos)
  }
}

const KEY_VALUES = (fb: FlatBuffer, t: number, i: number) => {
  for (const kv of fb.tables(t, i)) {
    fb.string(kv, 0)
    fb.string(kv, 1)
  }
}

/** A Schema table: fields (recursively: name, type, dictionary, children, metadata) and metadata. */
function checkSchema(fb: FlatBuffer, schema: number): void {
  const visit = (field: number, depth: number) => {
    if (depth > 64) throw damaged('schema', 'fields nested more than 64 deep')
    fb.string(field, 0)
    fb.child(field, 3)
    fb.child(field, 4)
    KEY_VALUES(fb, field, 6)
    for (const child of fb.tables(field, 5)) visit(child, depth + 1)
  }
  for (const field of fb.tables(schema, 1)) visit(field, 0)
  KEY_VALUES(fb, schema, 2)
  fb.vector(schema, 3, 8)
}

/** A RecordBatch table: its nodes and buffers fit, and no row count exceeds what `body` bytes can hold. */
function checkRecordBatch(fb: FlatBuffer, batch: number, body: number, where: string): void {
  // compressed buffers (field 3) may hold more than 8 rows per byte: no row bound then
  const most = fb.child(batch, 3) !== undefined ? Number.MAX_SAFE_INTEGER : body > 0 ? body * 8 : 1 << 16
  const rows = fb.int(batch, 0, 8)
  if (rows < 0 || rows > most) throw damaged(where, `a record batch of ${rows} rows in a body of ${body} bytes`)
  const nodes = fb.vector(batch, 1, 16)
  for (let k = 0; k < nodes.length; k++) {
    const length = fb.long(nodes.start + 16 * k)
    if (length < 0 || length > most) throw damaged(where, `a column of ${length} values in a body of ${body} bytes`)
  }
  const buffers = fb.vector(batch, 2, 16)
  for (let k = 0; k < buffers.length; k++) {
    const offset = fb.long(buffers.start + 16 * k)
    const length = fb.long(buffers.start + 16 * k + 8)
    if (offset < 0 || length < 0 || offset + length > body) throw damaged(where, `a buffer of ${length} bytes at ${offset} outside the ${body}-byte body`)
  }
  fb.vector(batch, 4, 8)
}

/** Message header types apache-arrow reads: Schema, DictionaryBatch, RecordBatch. */
const SCHEMA = 1
const DICTIONARY_BATCH = 2
const RECORD_BATCH = 3

/** One message's metadata (a Message table); returns its header type and body length. */
function checkMessage(metadata: Buffer, where: string, room: number): {type: number; body: number} {
  const fb = new FlatBuffer(metadata, where)
  const message = fb.root()
  const body = fb.int(message, 3, 8)
  if (!Number.isSafeInteger(body) || body < 0 || body > room) throw damaged(where, `a body of ${body} bytes where ${room} remain`)
  const type = fb.int(message, 1, 1)
  const header = fb.child(message, 2)
  if (header === undefined || ![SCHEMA, DICTIONARY_BATCH, RECORD_BATCH].includes(type)) throw damaged(where, `a message of unknown type ${type}`)
  if (type === SCHEMA) checkSchema(fb, header)
  else if (type === RECORD_BATCH) checkRecordBatch(fb, header, body, where)
  else {
    const data = fb.child(header, 1)
    if (data === undefined) throw damaged(where, 'a dictionary batch without data')
    checkRecordBatch(fb, data, body, where)
  }
  KEY_VALUES(fb, message, 4)
  return {type, body}
}

/**
 * Checks the Arrow IPC file open as `handle` (`size` bytes) as described above; throws an Error
 * naming the message (and its byte offset) or the footer at fault. Callers wrap it in their own error.
 */
export async function checkArrowFraming(handle: FileHandle, size: number): Promise<void> {
  const read = async (position: number, length: number): Promise<Buffer> => {
    const buf = Buffer.alloc(length)
    const {bytesRead} = await handle.read(buf, 0, length, position)
    return buf.subarray(0, bytesRead)
  }
  const fileFormat = size >= 8 && (await read(0, 6)).toString('latin1') === MAGIC
  let pos = fileFormat ? 8 : 0
  /** Each message's offset -> its type, metadata length (prefix and padding included) and body length. */
  const messages = new Map<number, {type: number; meta: number; body: number}>()
  for (let n = 1; pos + 4 <= size; n++) {
    let head = 4
    let length = (await read(pos, 4)).readInt32LE(0)
    if (length === -1) {
      if (pos + 8 > size) break
      length = (await read(pos + 4, 4)).readInt32LE(0)
      head = 8
    }
    if (length === 0) break
    const where = `message ${n} (at byte ${pos})`
    if (length < 0 || pos + head + length > size) throw damaged(where, `a metadata length of ${length} in a file of ${size} bytes`)
    const {type, body} = checkMessage(await read(pos + head, length), where, size - pos - head - length)
    messages.set(pos, {type, meta: head + length, body})
    pos += head + length + body
  }
  if (fileFormat) {
    if (size < 18 || (await read(size - 6, 6)).toString('latin1') !== MAGIC) throw damaged('footer', 'the closing ARROW1 magic is missing')
    const length = (await read(size - 10, 4)).readInt32LE(0)
    if (length <= 0 || length > size - 18) throw damaged('footer', `a footer length of ${length} in a file of ${size} bytes`)
    const fb = new FlatBuffer(await read(size - 10 - length, length), 'footer')
    const footer = fb.root()
    const schema = fb.child(footer, 1)
    if (schema !== undefined) checkSchema(fb, schema)
    // field 2: the dictionary batches' blocks; field 3: the record batches'
    for (const [i, type] of [[2, DICTIONARY_BATCH], [3, RECORD_BATCH]]) {
      const blocks = fb.vector(footer, i, 24)
      for (let k = 0; k < blocks.length; k++) {
        // Block: offset int64, metaDataLength int32 (+ 4 bytes padding), bodyLength int64
        const offset = fb.long(blocks.start + 24 * k)
        const metaLength = fb.int32At(blocks.start + 24 * k + 8)
        const bodyLength = fb.long(blocks.start + 24 * k + 16)
        // a block must name a message the walk above found, with its lengths
        const m = messages.get(offset)
        if (!m || m.type !== type || m.meta !== metaLength || m.body !== bodyLength) throw damaged('footer', `block ${k + 1} (byte ${offset}, ${metaLength} + ${bodyLength} bytes) is not a message of the file`)
      }
    }
    KEY_VALUES(fb, footer, 4)
  }
}
