/**
 * An open codiemb Arrow record file whose record batches are checked as they are read. Opening
 * reads only the footer: the schema, the metadata and the block list. It checks the footer against
 * `codiemb.footer_sha256` and the record kind. Each record batch is then checked against its
 * `codiemb.batch_sha256` digest the first time it is read (arrow-checksums.ts), so a flipped byte is
 * reported, naming the file and the batch, before any of its rows are used, and start-up never
 * reads every byte.
 *
 * Files without checksums (written before codiemb recorded them, or by another tool) open with
 * `checksums: 'none'`; what to do about them is the caller's decision (the trainer checks them
 * against manifest.json's sha256, or accepts them with a warning). An Arrow *stream* (no footer)
 * can be read in order, never out of order.
 */
import {open, type FileHandle} from 'node:fs/promises'
import {RecordBatchReader, type RecordBatch, type Schema} from 'apache-arrow'
import {BATCH_CHECKSUMS_KEY, BatchHasher, FOOTER_CHECKSUM_KEY, footerDigest, parseBatchChecksums, type BatchExtent} from './arrow-checksums.js'
import {checkFooterStructure} from './arrow-footer.js'
import {META, RecordFileError, type RecordKind} from './arrow-layouts.js'

/** Smallest Arrow IPC file: magic and padding (8), an empty footer and its length (4), magic (6). */
const MIN_ARROW_FILE_BYTES = 8 + 4 + 6

/** Opens `file` and Arrow's reader over it, turning every way it can fail into a RecordFileError naming the file. */
async function openArrow(file: string): Promise<{handle: FileHandle; reader: RecordBatchReader; bytes: number}> {
  let handle: FileHandle
  try {
    handle = await open(file, 'r')
  } catch (error) {
    throw new RecordFileError(`${file}: cannot open Arrow file: ${(error as Error).message}`)
  }
  try {
    const {size} = await handle.stat()
    if (size === 0) throw new RecordFileError(`${file}: the file is empty (0 bytes); expected an Arrow IPC file written by \`codiemb prepare\``)
    // apache-arrow decodes the footer unverified: a damaged one must be caught before it does.
    await checkFooterStructure(file, handle, size)
    let reader: RecordBatchReader
    try {
      reader = await RecordBatchReader.from(handle)
      await reader.open()
    } catch (error) {
      // apache-arrow's own TypeErrors ("Cannot read properties of null") say nothing to a user.
      const reason = error instanceof TypeError ? '' : `: ${(error as Error).message}`
      throw new RecordFileError(`${file}: not a readable Arrow IPC file (${size} bytes; damaged, or not Arrow at all)${reason}`)
    }
    if (!reader.schema)
      throw new RecordFileError(
        `${file}: not an Arrow IPC file (${size} bytes, no schema found${size < MIN_ARROW_FILE_BYTES ? '; too short to be one' : ''}); expected a file written by \`codiemb prepare\``,
      )
    return {handle, reader, bytes: size}
  } catch (error) {
    await handle.close().catch(() => {})
    throw error
  }
}

/** Record-batch checks hashing at once per file (each holds a 1 MiB buffer). */
const CONCURRENT_CHECKS = 4

export interface OpenRecordFileOptions {
  /** Refuse a file of another kind (before any row is read). */
  kind?: RecordKind
}

/** An open record file (see the module comment). Call `close()` when done. */
export class RecordFile {
  /** Record batches checked, or being checked, against their digests (one check per batch, even when reads overlap). */
  private readonly checked = new Map<number, Promise<void>>()
  /** Checks hashing now, and the checks waiting for one of the CONCURRENT_CHECKS slots. */
  private checking = 0
  private readonly waitingChecks: (() => void)[] = []
  private closed = false
  /** Bytes this object read from the file (footer checks and apache-arrow's own reads not counted): what the I/O bench reports. */
  readonly stats = {bytesRead: 0, reads: 0, batchesVerified: 0, verifiedBytes: 0}

  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
    private readonly reader: RecordBatchReader,
    /** File size in bytes. */
    readonly bytes: number,
    /** Per record batch, its place in the file (undefined for an Arrow stream). */
    readonly extents: BatchExtent[] | undefined,
    /** Per record batch, its recorded digest (undefined: the file records none). */
    private readonly digests: string[] | undefined,
    /** Per record batch, the length of its message's metadata (prefix and padding included): its body follows. */
    private readonly metaLengths: number[] | undefined,
  ) {}

  /** Opens `file`, checks its footer and kind; reads no record batch. */
  static async open(file: string, options: OpenRecordFileOptions = {}): Promise<RecordFile> {
    const {handle, reader, bytes} = await openArrow(file)
    try {
      const metadata = reader.schema.metadata
      let extents: BatchExtent[] | undefined
      let metaLengths: number[] | undefined
      if (reader.isFile() && reader.footer) {
        const footer = reader.footer
        metaLengths = []
        extents = Array.from({length: footer.numRecordBatches}, (_, i) => {
          try {
            const block = footer.getRecordBatch(i)!
            metaLengths!.push(block.metaDataLength)
            return {offset: block.offset, length: block.metaDataLength + block.bodyLength}
          } catch (error) {
            throw new RecordFileError(`${file}: damaged footer: record batch ${i}'s block cannot be read (${(error as Error).message})`)
          }
        })
        const bad = extents.findIndex((e) => !(e.offset >= 0 && e.length > 0 && e.offset + e.length <= bytes))
        if (bad >= 0) throw new RecordFileError(`${file}: damaged footer: record batch ${bad} lies outside the file (${bytes} bytes)`)
      }
      const corrupt = (reason: string) => new RecordFileError(`${file}: damaged footer: ${reason}`)
      const digests = parseBatchChecksums(metadata.get(BATCH_CHECKSUMS_KEY), corrupt)
      const recordedFooter = metadata.get(FOOTER_CHECKSUM_KEY)
      if (recordedFooter !== undefined && (!extents || recordedFooter !== footerDigest(metadata, reader.schema.fields, extents)))
        throw corrupt(`its content does not match ${FOOTER_CHECKSUM_KEY} (a byte changed since the file was written); re-run \`codiemb prepare\``)
      if (digests && (!extents || digests.length !== extents.length))
        throw corrupt(`${BATCH_CHECKSUMS_KEY} lists ${digests.length} record batches, the file has ${extents?.length ?? 'an unknown number of'}`)
      const kind = metadata.get(META.kind)
      if (options.kind && kind !== options.kind)
        throw new RecordFileError(
          `${file}: expected a codiemb "${options.kind}" record file, but its schema metadata ${META.kind} is ${kind === undefined ? 'missing' : JSON.stringify(kind)}`,
        )
      return new RecordFile(file, handle, reader, bytes, extents, digests, metaLengths)
    } catch (error) {
      await Promise.resolve(reader.cancel()).catch(() => {})
      await handle.close().catch(() => {})
      throw error
    }
  }

  get schema(): Schema {
    return this.reader.schema
  }

  /** The footer's schema metadata. */
  get metadata(): Record<string, string> {
    return Object.fromEntries(this.reader.schema.metadata)
  }

  get kind(): RecordKind | undefined {
    return this.reader.schema.metadata.get(META.kind) as RecordKind | undefined
  }

  /** Record batches (undefined for an Arrow stream, whose batches are only known by reading them). */
  get batchCount(): number | undefined {
    return this.extents?.length
  }

  /** Rows according to the footer (`codiemb.rows`), when it records them. */
  get recordedRows(): number | undefined {
    const value = this.reader.schema.metadata.get(META.rows)
    return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined
  }

  /** Whether each record batch is checked against a recorded digest as it is read. */
  get checksums(): 'batches' | 'none' {
    return this.digests ? 'batches' : 'none'
  }

  /** The footer's digest, which covers every batch digest: an identity of the file's content (undefined without checksums). */
  get contentDigest(): string | undefined {
    return this.reader.schema.metadata.get(FOOTER_CHECKSUM_KEY)
  }

  /** `length` bytes at `position`; a short read (the file shrank) is an error naming the file. */
  readBytes(position: number, length: number): Promise<Uint8Array> {
    return this.readInto(position, new Uint8Array(length))
  }

  /** Fills `bytes` from `position` (as readBytes, into a buffer the caller holds); returns it. */
  async readInto(position: number, bytes: Uint8Array): Promise<Uint8Array> {
    const length = bytes.length
    let done = 0
    while (done < length) {
      const {bytesRead} = await this.handle.read(bytes, done, length - done, position + done)
      this.stats.reads++
      if (bytesRead === 0) throw new RecordFileError(`${this.file}: bytes ${position}–${position + length - 1} lie past its end (the file was truncated while open)`)
      done += bytesRead
    }
    this.stats.bytesRead += length
    return bytes
  }

  /** Where record batch `index` lies: its message's offset, the offset of its body (after the metadata), and its total length. */
  batchPlace(index: number): {offset: number; bodyStart: number; length: number} {
    if (!this.extents || !this.metaLengths) throw new RecordFileError(`${this.file}: an Arrow stream (no footer) cannot be read out of order`)
    if (!(index >= 0 && index < this.extents.length)) throw new RecordFileError(`${this.file}: no record batch ${index} (the file has ${this.extents.length})`)
    const {offset, length} = this.extents[index]!
    return {offset, bodyStart: offset + this.metaLengths[index]!, length}
  }

  /**
   * Checks record batch `index` against its digest, once per batch (overlapping calls share one
   * check). The batch is hashed in 1 MiB reads, so checking holds no more than that in memory.
   */
  verifyBatch(index: number): Promise<void> {
    if (!this.digests) return Promise.resolve()
    let check = this.checked.get(index)
    if (!check) {
      check = this.hashBatch(index)
      this.checked.set(index, check)
      check.catch(() => this.checked.delete(index))
    }
    return check
  }

  /**
   * Hashes record batch `index` through one 1 MiB buffer. At most CONCURRENT_CHECKS run at once per
   * file (the others wait their turn), so checks in flight hold a fixed amount of memory however
   * many record batches the prefetched batches touch first (on a large file, nearly every row).
   */
  private async hashBatch(index: number): Promise<void> {
    await this.checkSlot()
    try {
      await this.hashBatchNow(index)
    } finally {
      this.releaseCheckSlot()
    }
  }

  private checkSlot(): Promise<void> {
    if (this.checking < CONCURRENT_CHECKS) {
      this.checking++
      return Promise.resolve()
    }
    return new Promise((resolve) => this.waitingChecks.push(resolve))
  }

  private releaseCheckSlot(): void {
    const next = this.waitingChecks.shift()
    if (next) next() // the slot passes to the next check
    else this.checking--
  }

  private async hashBatchNow(index: number): Promise<void> {
    const {offset, length} = this.extents![index]!
    const hasher = new BatchHasher()
    const bytes = new Uint8Array(Math.min(1 << 20, length))
    let intact = true
    for (let at = 0; at < length && intact; at += bytes.length) {
      const size = Math.min(bytes.length, length - at)
      const {bytesRead} = await this.handle.read(bytes, 0, size, offset + at)
      this.stats.reads++
      this.stats.bytesRead += bytesRead
      this.stats.verifiedBytes += bytesRead
      if (bytesRead !== size) intact = false
      else hasher.update(bytes.subarray(0, size)) // hashed before the buffer is read into again
    }
    if (!intact || hasher.digest() !== this.digests![index])
      throw new RecordFileError(
        `${this.file}: record batch ${index} of ${this.digests!.length} (bytes ${offset}–${offset + length - 1}) is damaged: ` +
          `it does not match the checksum \`codiemb prepare\` recorded (${BATCH_CHECKSUMS_KEY}); re-run \`codiemb prepare\` or restore the file`,
      )
    this.stats.batchesVerified++
  }

  /** Record batch `index` (0-based), checked against its digest before it is decoded. */
  async readBatch(index: number): Promise<RecordBatch> {
    if (!this.extents) throw new RecordFileError(`${this.file}: an Arrow stream (no footer) cannot be read out of order`)
    if (!(index >= 0 && index < this.extents.length)) throw new RecordFileError(`${this.file}: no record batch ${index} (the file has ${this.extents.length})`)
    await this.verifyBatch(index)
    let batch: RecordBatch | null
    try {
      batch = await this.reader.readRecordBatch(index)
    } catch (error) {
      throw new RecordFileError(`${this.file}: record batch ${index} cannot be decoded (damaged file?): ${(error as Error).message}`)
    }
    if (!batch) throw new RecordFileError(`${this.file}: record batch ${index} cannot be read (damaged file?)`)
    return batch
  }

  /**
   * Every record batch in order with the file row of its first row. At the end, the rows read must
   * add up to the footer's `codiemb.rows` when it records them.
   */
  async *batches(): AsyncGenerator<{batch: RecordBatch; index: number; firstRow: number}> {
    let firstRow = 0
    let index = 0
    if (this.extents) {
      for (; index < this.extents.length; index++) {
        const batch = await this.readBatch(index)
        yield {batch, index, firstRow}
        firstRow += batch.numRows
      }
    } else {
      try {
        for await (const batch of this.reader) {
          yield {batch, index: index++, firstRow}
          firstRow += batch.numRows
        }
      } catch (error) {
        if (error instanceof RecordFileError) throw error
        throw new RecordFileError(`${this.file}: record batch ${index} cannot be decoded (damaged file?): ${(error as Error).message}`)
      }
    }
    const recorded = this.recordedRows
    if (recorded !== undefined && recorded !== firstRow)
      throw new RecordFileError(`${this.file}: the footer records ${recorded} rows (${META.rows}), its record batches hold ${firstRow}; the file is damaged`)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await Promise.resolve(this.reader.cancel()).catch(() => {})
    await this.handle.close().catch(() => {})
  }
}
