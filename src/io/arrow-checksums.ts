/**
 * Checksums of codiemb's Arrow record files, so a reader detects a damaged file without reading it
 * all up front. The writer (arrow-writer.ts) records two footer metadata keys; the reader
 * (record-file.ts) checks them:
 *
 * - `codiemb.batch_sha256`: per record batch, in file order, the first 128 bits (32 hex digits) of
 *   the sha256 of the batch's bytes as they sit in the file (its message, padding and body, i.e. the
 *   footer block `offset .. offset + metaDataLength + bodyLength`). A reader checks a batch when it
 *   first reads it, so opening a file never reads every byte.
 * - `codiemb.footer_sha256`: the same truncated sha256 over the rest of the footer, written
 *   canonically (footerDigest): every other metadata key and value, the fields with their types and
 *   nullability, and each batch's offset and length. A flipped byte in the footer therefore either
 *   breaks Arrow's parse or changes something this digest covers.
 *
 * 128 bits is far beyond what detecting accidental damage needs and keeps the footer of a file with
 * thousands of batches small.
 */
import {createHash} from 'node:crypto'
import type {Field} from 'apache-arrow'

/** Footer metadata key: JSON array of each record batch's digest, in file order. */
export const BATCH_CHECKSUMS_KEY = 'codiemb.batch_sha256'
/** Footer metadata key: the digest of the rest of the footer (footerDigest). */
export const FOOTER_CHECKSUM_KEY = 'codiemb.footer_sha256'

/** Hex digits kept of each sha256 (128 bits). */
const DIGEST_HEX = 32

/** A record batch's place in the file: the footer block's offset and its total length in bytes. */
export interface BatchExtent {
  offset: number
  length: number
}

/** An incremental digest of one record batch's bytes. */
export class BatchHasher {
  private readonly hash = createHash('sha256')
  update(bytes: Uint8Array): void {
    this.hash.update(bytes)
  }
  digest(): string {
    return this.hash.digest('hex').slice(0, DIGEST_HEX)
  }
}

/** The digest of a byte range (a record batch read back for checking). */
export function bytesDigest(bytes: Uint8Array): string {
  const h = new BatchHasher()
  h.update(bytes)
  return h.digest()
}

/**
 * The digest of a footer's content besides FOOTER_CHECKSUM_KEY itself: metadata sorted by key, each
 * field as [name, Arrow type, nullable], each batch as [offset, length]. Writer and reader build the
 * same canonical JSON from the schema they hold.
 */
export function footerDigest(metadata: Map<string, string> | Record<string, string>, fields: Field[], batches: BatchExtent[]): string {
  const entries = (metadata instanceof Map ? [...metadata] : Object.entries(metadata)).filter(([key]) => key !== FOOTER_CHECKSUM_KEY)
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const canonical = JSON.stringify({
    metadata: entries,
    fields: fields.map((f) => [f.name, String(f.type), f.nullable]),
    batches: batches.map((b) => [b.offset, b.length]),
  })
  return createHash('sha256').update(canonical).digest('hex').slice(0, DIGEST_HEX)
}

/**
 * The batch digests a footer records, or undefined when it records none (a file written before
 * codiemb recorded checksums, or by another tool). Throws `invalid(reason)` when the key is present
 * but not a JSON array of digests.
 */
export function parseBatchChecksums(value: string | undefined, invalid: (reason: string) => Error): string[] | undefined {
  if (value === undefined) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(value)
  } catch (error) {
    throw invalid(`${BATCH_CHECKSUMS_KEY} is not valid JSON (${(error as Error).message})`)
  }
  const pattern = new RegExp(`^[0-9a-f]{${DIGEST_HEX}}$`)
  if (!Array.isArray(parsed) || !parsed.every((d) => typeof d === 'string' && pattern.test(d)))
    throw invalid(`${BATCH_CHECKSUMS_KEY} is not a list of ${DIGEST_HEX}-digit hex digests`)
  return parsed as string[]
}
