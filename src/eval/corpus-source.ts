/**
 * A corpus prepared by `codiemb prepare` (record kind `corpus`: id, title, text), streamed from its
 * Arrow file for eval and mine: nothing but the ids is held in memory; a slice of passages is read
 * when it is encoded (io/record-rows.ts reads the slice's title and text bytes by their offsets),
 * and `at(rows)` reads single passages (mine's negatives). Each record batch is checked against the
 * checksum `prepare` recorded the first time any of its rows is read (reading the ids does that at
 * open, one pass over the file); a damaged batch is a TaskDataError (exit 2) naming the file and
 * the batch. Memory: the ids (one JS string each) plus one slice of texts, whatever the corpus size.
 *
 * A passage's text is its title and body joined (`join`): eval joins them as sentence-transformers
 * and MTEB do (title, a space, body, trimmed); mine keeps an untitled body as it is (its output
 * carries the corpus text itself). Both are the exact expressions those paths used on in-memory rows.
 */
import {DataType} from 'apache-arrow'
import {RecordFile, RecordFileError} from '../io/arrow-records.js'
import {RecordRows} from '../io/record-rows.js'
import {TaskDataError} from './task-files.js'
import {ArrayTextSource, hashSlices, SCAN_SLICE, type TextSource} from './text-source.js'

/** How a row's title (null when absent) and body become the passage that is encoded. */
export type PassageJoin = (title: string | null, text: string) => string

/** sentence-transformers / MTEB: title and body joined by a space, trimmed (what eval encodes). */
export const evalPassage: PassageJoin = (title, text) => {
  const t = title === null ? '' : title.trim()
  return t ? `${t} ${text}`.trim() : text.trim()
}

/** mine: as eval, but an untitled body is kept untrimmed (it is written out as a negative). */
export const minePassage: PassageJoin = (title, text) => {
  const t = title?.trim()
  return t ? `${t} ${text}`.trim() : text
}

/** Rows read at once by `at` when the rows asked are close together. */
const RUN_GAP = 64

/** The rows of a slice: each row's raw title and body, and the joined passages. */
export interface CorpusSlice {
  titles: (string | null)[]
  texts: string[]
  passages: string[]
}

/** A corpus as eval and mine read it: its ids whole, its rows a slice at a time. */
export interface Corpus extends TextSource {
  /** Every row's id, in order. */
  ids(): Promise<string[]>
  /** Titles, bodies and passages of rows [from, to). */
  columns(from: number, to: number): Promise<CorpusSlice>
}

/** Corpus rows held in memory (a corpus that does not stream, tests): the same interface. */
export class MemoryCorpus extends ArrayTextSource implements Corpus {
  constructor(
    private readonly rows: readonly {id: string; title?: string | null; text: string}[],
    join: PassageJoin,
  ) {
    super(rows.map((r) => join(r.title ?? null, r.text)))
  }
  async ids(): Promise<string[]> {
    return this.rows.map((r) => r.id)
  }
  async columns(from: number, to: number): Promise<CorpusSlice> {
    const rows = this.rows.slice(from, to)
    return {titles: rows.map((r) => r.title ?? null), texts: rows.map((r) => r.text), passages: this.texts.slice(from, to)}
  }
}

export class ArrowCorpus implements Corpus {
  private constructor(
    readonly file: string,
    private readonly records: RecordFile,
    private readonly rows: RecordRows,
    private readonly join: PassageJoin,
    readonly count: number,
  ) {}

  /**
   * The corpus of a prepared file, or undefined when the file is not one that streams (not a
   * codiemb `corpus` file with Utf8 id/title/text columns, or an Arrow stream without a footer):
   * the caller then reads it whole as before.
   */
  static async open(file: string, join: PassageJoin): Promise<ArrowCorpus | undefined> {
    let records: RecordFile
    try {
      records = await RecordFile.open(file)
    } catch (error) {
      throw refused(error, file)
    }
    try {
      const utf8 = (name: string) => {
        const field = records.schema.fields.find((f) => f.name === name)
        return field !== undefined && DataType.isUtf8(field.type)
      }
      if (records.kind !== 'corpus' || records.batchCount === undefined || !['id', 'title', 'text'].every(utf8)) {
        await records.close()
        return undefined
      }
      const rows = await RecordRows.open(records)
      const recorded = records.recordedRows
      if (recorded !== undefined && recorded !== rows.rows)
        throw new RecordFileError(`${file}: the footer records ${recorded} rows (codiemb.rows), its record batches hold ${rows.rows}; the file is damaged`)
      return new ArrowCorpus(file, records, rows, join, rows.rows)
    } catch (error) {
      await records.close().catch(() => {})
      throw refused(error, file)
    }
  }

  /** Every row's id, in file order (reads the id column, checking each record batch once). */
  async ids(): Promise<string[]> {
    const ids: string[] = []
    for (const batch of this.rows.batches) {
      const part = await this.read(() => this.rows.texts('id', batch.firstRow, batch.firstRow + batch.numRows))
      part.forEach((id, k) => {
        if (id === null) throw new TaskDataError(`${this.file}: row ${batch.firstRow + k + 1} has no document id (field "id" is null)`)
        ids.push(id)
      })
    }
    return ids
  }

  /** Titles, bodies and passages of rows [from, to). */
  async columns(from: number, to: number): Promise<CorpusSlice> {
    const end = Math.min(to, this.count)
    if (from >= end) return {titles: [], texts: [], passages: []}
    const [titles, texts] = await this.read(() => Promise.all([this.rows.texts('title', from, end), this.rows.texts('text', from, end)]))
    texts.forEach((t, k) => {
      if (t === null) throw new TaskDataError(`${this.file}: row ${from + k + 1} has no document text (field "text" is null)`)
    })
    return {titles: titles as (string | null)[], texts, passages: texts.map((t, k) => this.join(titles[k] as string | null, t))}
  }

  async slice(from: number, to: number): Promise<string[]> {
    return (await this.columns(from, to)).passages
  }

  /** Passages at `rows`: rows close together are read as one run. */
  async at(rows: readonly number[]): Promise<string[]> {
    for (const r of rows) if (!(Number.isInteger(r) && r >= 0 && r < this.count)) throw new RangeError(`${this.file}: no row ${r} (the corpus has ${this.count})`)
    const sorted = [...new Set(rows)].sort((a, b) => a - b)
    const byRow = new Map<number, string>()
    for (let i = 0; i < sorted.length; ) {
      let j = i
      while (j + 1 < sorted.length && sorted[j + 1]! - sorted[j]! <= RUN_GAP) j++
      const from = sorted[i]!
      const passages = await this.slice(from, sorted[j]! + 1)
      for (let k = i; k <= j; k++) byRow.set(sorted[k]!, passages[sorted[k]! - from]!)
      i = j + 1
    }
    return rows.map((r) => byRow.get(r)!)
  }

  hash(): Promise<string> {
    return hashSlices(this, SCAN_SLICE)
  }

  close(): Promise<void> {
    return this.records.close()
  }

  /** Runs a read, turning the reader's errors (a damaged record batch) into TaskDataErrors naming the file. */
  private async read<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run()
    } catch (error) {
      throw refused(error, this.file)
    }
  }
}

/** A reader's error as a TaskDataError (exit 2): the data is there but cannot be read (as task-data.ts readRows reports it). */
function refused(error: unknown, file: string): unknown {
  if (error instanceof TaskDataError || !(error instanceof Error)) return error
  if (error instanceof RecordFileError) return new TaskDataError(error.message.startsWith(file) ? error.message : `${file}: ${error.message}`)
  return new TaskDataError(`${file}: cannot be read: ${error.message}`)
}
