/**
 * Texts to encode, read a slice at a time, so that a corpus of millions of passages never has to
 * be one `string[]` in memory (eval and mine read corpora this way; see docs/evaluation.md).
 *
 * A TextSource has a fixed `count`; `slice(from, to)` returns texts [from, to) in order, `at(rows)`
 * the texts at the given positions (in the order asked), and `hash()` the digest that keys the
 * embedding cache: sha256 over `<length>:<text>` of every text in order (TextHasher), streamed
 * slice by slice, so it equals what hashing the whole array gave and existing cache entries stay
 * valid. Small sets (queries, STS texts, tests) use the in-memory ArrayTextSource; a prepared
 * corpus is streamed from its Arrow file (corpus-source.ts).
 */
import {createHash, type Hash} from 'node:crypto'

export interface TextSource {
  /** How many texts. */
  readonly count: number
  /** Texts [from, to) (clamped to count), in order. */
  slice(from: number, to: number): Promise<string[]>
  /** The texts at positions `rows` (each in [0, count)), in the order asked. */
  at(rows: readonly number[]): Promise<string[]>
  /** The embedding cache's digest of all the texts in order (see the module comment). */
  hash(): Promise<string>
  /** Releases what the source holds open (a file); a no-op in memory. */
  close(): Promise<void>
}

/** Texts per slice when a source is hashed or scanned whole. */
export const SCAN_SLICE = 4096

/** sha256 over `<length>:<text>` for each text in order, fed any number of texts at a time. */
export class TextHasher {
  private readonly h: Hash = createHash('sha256')
  update(texts: readonly string[]): this {
    for (const t of texts) {
      this.h.update(String(t.length))
      this.h.update(':')
      this.h.update(t)
    }
    return this
  }
  digest(): string {
    return this.h.digest('hex')
  }
}

/** Hashes a source slice by slice (TextHasher); what `hash()` of a streamed source returns. */
export async function hashSlices(source: Pick<TextSource, 'count' | 'slice'>, sliceSize = SCAN_SLICE): Promise<string> {
  const hasher = new TextHasher()
  for (let s = 0; s < source.count; s += sliceSize) hasher.update(await source.slice(s, s + sliceSize))
  return hasher.digest()
}

/** An array as a TextSource. */
export class ArrayTextSource implements TextSource {
  constructor(readonly texts: readonly string[]) {}
  get count(): number {
    return this.texts.length
  }
  async slice(from: number, to: number): Promise<string[]> {
    return this.texts.slice(from, to)
  }
  async at(rows: readonly number[]): Promise<string[]> {
    return rows.map((r) => {
      if (!(Number.isInteger(r) && r >= 0 && r < this.texts.length)) throw new RangeError(`no text ${r} (there are ${this.texts.length})`)
      return this.texts[r]!
    })
  }
  async hash(): Promise<string> {
    return new TextHasher().update(this.texts).digest()
  }
  async close(): Promise<void> {}
}

export function isTextSource(value: unknown): value is TextSource {
  const s = value as Partial<TextSource> | undefined
  return !!s && !Array.isArray(s) && typeof s.slice === 'function' && typeof s.hash === 'function' && typeof s.count === 'number'
}

/** A source as is, an array wrapped (callers with a few texts keep passing arrays). */
export function textSource(texts: TextSource | readonly string[]): TextSource {
  return isTextSource(texts) ? texts : new ArrayTextSource(texts as readonly string[])
}
