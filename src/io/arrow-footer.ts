/**
 * A structural check of an Arrow IPC file's footer before apache-arrow decodes it. The footer is a
 * FlatBuffer (File.fbs / Schema.fbs) that apache-arrow reads without verifying it: one flipped byte
 * in a vector's length makes it loop over millions of phantom fields or blocks until the process
 * runs out of memory. This walks the parts of the footer apache-arrow reads (the footer table, the
 * schema with its fields, their types, children, dictionary encodings and metadata, the block
 * lists) and checks that every table, vector and string lies inside the footer, so a damaged footer
 * becomes an error naming the file instead of a crash. What the values mean is checked afterwards,
 * against `codiemb.footer_sha256` (record-file.ts).
 */
import type {FileHandle} from 'node:fs/promises'
import {RecordFileError} from './arrow-layouts.js'

/** "ARROW1" + 2 bytes of padding at the start; footer length (int32) + "ARROW1" at the end. */
const LEADING = 8
const TRAILING = 10
const MAGIC = 'ARROW1'
/** Nested fields deeper than this are not a record file's (ours nest 2 deep). */
const MAX_DEPTH = 64
/** FlatBuffer union tags of Schema.fbs's Type whose tables hold more than scalars. */
const TYPE_TIMESTAMP = 10
const TYPE_UNION = 14

class Footer {
  private readonly view: DataView
  constructor(
    private readonly bytes: Uint8Array,
    private readonly fail: (what: string) => never,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  }

  private need(pos: number, size: number, what: string): void {
    if (!(Number.isInteger(pos) && pos >= 0 && size >= 0 && pos + size <= this.bytes.length)) this.fail(`${what} lies outside the footer`)
  }

  /** Position of the object an offset field at `pos` points to. */
  private target(pos: number, what: string): number {
    this.need(pos, 4, what)
    const to = pos + this.view.getUint32(pos, true)
    this.need(to, 4, what)
    return to
  }

  /** A table at `pos`: checks its vtable and returns where each present field sits. */
  table(pos: number, what: string): (field: number) => number | undefined {
    this.need(pos, 4, what)
    const vtable = pos - this.view.getInt32(pos, true)
    this.need(vtable, 4, `${what}'s vtable`)
    const vtableSize = this.view.getUint16(vtable, true)
    const tableSize = this.view.getUint16(vtable + 2, true)
    if (vtableSize < 4 || vtableSize % 2 !== 0) this.fail(`${what}'s vtable is malformed`)
    this.need(vtable, vtableSize, `${what}'s vtable`)
    this.need(pos, tableSize, what)
    const count = (vtableSize - 4) / 2
    return (field) => {
      if (field >= count) return undefined
      const offset = this.view.getUint16(vtable + 4 + 2 * field, true)
      if (offset === 0) return undefined
      if (offset >= tableSize) this.fail(`${what}: field ${field} lies outside its table`)
      return pos + offset
    }
  }

  /** The table an offset field points to (undefined when the field is absent). */
  child(field: number | undefined, what: string): ((field: number) => number | undefined) | undefined {
    return field === undefined ? undefined : this.table(this.target(field, what), what)
  }

  /** A vector an offset field points to: its length, after checking it holds `length × elementSize` bytes. */
  vector(field: number | undefined, elementSize: number, what: string): {start: number; length: number} | undefined {
    if (field === undefined) return undefined
    const at = this.target(field, what)
    const length = this.view.getUint32(at, true)
    this.need(at + 4, length * elementSize, `${what} (${length} items)`)
    return {start: at + 4, length}
  }

  /** Each table of a vector of tables. */
  tables(field: number | undefined, what: string, each: (table: (field: number) => number | undefined, index: number) => void): void {
    const v = this.vector(field, 4, what)
    for (let i = 0; v && i < v.length; i++) each(this.table(this.target(v.start + 4 * i, `${what}[${i}]`), `${what}[${i}]`), i)
  }

  string(field: number | undefined, what: string): void {
    this.vector(field, 1, what)
  }

  byte(field: number | undefined): number {
    return field === undefined ? 0 : this.bytes[field]!
  }

  keyValues(field: number | undefined, what: string): void {
    this.tables(field, what, (kv, i) => {
      this.string(kv(0), `${what}[${i}].key`)
      this.string(kv(1), `${what}[${i}].value`)
    })
  }

  field(table: (field: number) => number | undefined, what: string, depth: number): void {
    if (depth > MAX_DEPTH) this.fail(`${what} nests fields more than ${MAX_DEPTH} deep`)
    this.string(table(0), `${what}.name`)
    const typeTag = this.byte(table(2))
    const type = this.child(table(3), `${what}.type`)
    if (type && typeTag === TYPE_TIMESTAMP) this.string(type(1), `${what}.type.timezone`)
    if (type && typeTag === TYPE_UNION) this.vector(type(1), 4, `${what}.type.typeIds`)
    const dictionary = this.child(table(4), `${what}.dictionary`)
    if (dictionary) this.child(dictionary(1), `${what}.dictionary.indexType`)
    this.tables(table(5), `${what}.children`, (child, i) => this.field(child, `${what}.children[${i}]`, depth + 1))
    this.keyValues(table(6), `${what}.custom_metadata`)
  }

  /** Footer { version, schema, dictionaries: [Block], recordBatches: [Block], custom_metadata }. */
  check(): void {
    const footer = this.table(this.target(0, 'the footer'), 'the footer')
    const schema = this.child(footer(1), 'the schema')
    if (schema) {
      this.tables(schema(1), 'the schema fields', (field, i) => this.field(field, `field ${i}`, 0))
      this.keyValues(schema(2), 'the schema metadata')
      this.vector(schema(3), 8, 'the schema features')
    }
    this.vector(footer(2), 24, 'the dictionary block list')
    this.vector(footer(3), 24, 'the record batch block list')
    this.keyValues(footer(4), 'the footer metadata')
  }
}

/**
 * Checks the trailing magic, the footer's length and the footer's structure of the Arrow IPC file
 * open as `handle` (`size` bytes). A file that starts with the Arrow magic but does not end with it
 * was cut short. Returns without a verdict for anything else (an Arrow *stream* has no footer; what
 * is not Arrow at all apache-arrow reports). Throws a RecordFileError naming `file`.
 */
export async function checkFooterStructure(file: string, handle: FileHandle, size: number): Promise<void> {
  const head = new Uint8Array(MAGIC.length)
  await handle.read(head, 0, head.length, 0)
  const isFile = Buffer.from(head).toString('latin1') === MAGIC
  const tail = new Uint8Array(TRAILING)
  if (size >= TRAILING) await handle.read(tail, 0, TRAILING, size - TRAILING)
  if (Buffer.from(tail.subarray(4)).toString('latin1') !== MAGIC) {
    if (isFile)
      throw new RecordFileError(`${file}: truncated Arrow IPC file (${size} bytes): it starts like one but does not end with its footer; re-run \`codiemb prepare\` or restore the file`)
    return
  }
  const length = new DataView(tail.buffer).getInt32(0, true)
  const fail = (what: string): never => {
    throw new RecordFileError(`${file}: damaged Arrow footer: ${what}; re-run \`codiemb prepare\` or restore the file`)
  }
  if (size < LEADING + TRAILING) fail(`the file is only ${size} bytes`)
  if (!(length >= 4 && length <= size - LEADING - TRAILING)) fail(`its recorded length ${length} does not fit a ${size}-byte file`)
  const bytes = new Uint8Array(length)
  await handle.read(bytes, 0, length, size - TRAILING - length)
  new Footer(bytes, fail).check()
}
