/**
 * `delimited` reader: TSV/CSV files, with or without a header line, into STS pairs or IR examples.
 *
 * Inputs: one file per split. `fields` maps record fields to columns, by header name or by 1-based
 * column index (as `cut -f` counts), e.g. STS Benchmark: `{score: 5, text1: 6, text2: 7}`.
 * Without `fields`, an STS dataset reads columns 1, 2, 3 as text1, text2, score (the C-MTEB
 * `s1<TAB>s2<TAB>label` layout).
 *
 * Options:
 * - `delimiter` (default tab).
 * - `quoting`: `none` (default) splits each line on the delimiter and never interprets quotes — what
 *   STS Benchmark needs, whose lines contain stray quotes and extra tab fields; `csv` follows RFC 4180
 *   (fields in double quotes may hold delimiters, doubled quotes and line breaks; a row's line is the
 *   line it starts on).
 * - `header`: the first line names the columns.
 * - `columns`: the exact number of fields every row must have (with a header, its length by default);
 *   otherwise a row only needs the columns that `fields` refers to. Rows with another count are
 *   rejected as "wrong column count".
 * - `encoding`: the files' text encoding (default utf-8; gbk, big5, … — src/data/text-decoder.ts).
 *
 * Relations: the `json` reader does the same for JSON objects; `prepare` validates the drafts.
 */
import {resolveFields, type FieldMapping, type FieldRef} from '../mapping.js'
import {decodedChunks, excerpt, readLineBatches} from '../text-input.js'
import {DataError, type ReadItem, type ReadRequest} from '../types.js'
import {encodingOf, mappedItem, splitFile, splitFileReader, trainingKind} from './common.js'

export interface DelimitedOptions {
  delimiter?: string
  quoting?: 'none' | 'csv'
  header?: boolean
  columns?: number
}

export {delimitedOptions as optionsSchema} from './options.js'

interface Row {
  line: number
  fields: string[]
  /** Set when the csv parser found a broken quote on this row. */
  problem?: string
  raw: string
}

async function* plainRows(file: string, delimiter: string, encoding: string): AsyncGenerator<Row> {
  for await (const batch of readLineBatches(file, encoding)) {
    for (let i = 0; i < batch.lines.length; i++) {
      const text = batch.lines[i]
      if (text === '') continue
      yield {line: batch.firstLine + i, fields: text.split(delimiter), raw: text}
    }
  }
}

/** RFC 4180 rows, streamed character by character (quoted fields may span lines). */
async function* csvRows(file: string, delimiter: string, encoding: string): AsyncGenerator<Row> {
  let line = 1
  let rowLine = 1
  let fields: string[] = []
  let field = ''
  let raw = ''
  let problem: string | undefined
  let state: 'start' | 'plain' | 'quoted' | 'quote-in-quoted' = 'start'
  const endRow = (): Row | undefined => {
    fields.push(field)
    const row = fields.length === 1 && fields[0] === '' && state !== 'quote-in-quoted' ? undefined : {line: rowLine, fields, problem, raw}
    fields = []
    field = ''
    raw = ''
    problem = undefined
    state = 'start'
    return row
  }
  for await (const text of decodedChunks(file, encoding)) {
    for (let i = 0; i < text.length; i++) {
      const ch = text[i]
      if (state === 'quoted') {
        if (ch === '"') state = 'quote-in-quoted'
        else {
          if (ch === '\n') line++
          field += ch
        }
        raw += ch
        continue
      }
      if (ch === '\r') continue
      if (ch === '\n') {
        const row = endRow()
        line++
        rowLine = line
        if (row) yield row
        continue
      }
      raw += ch
      if (state === 'quote-in-quoted') {
        if (ch === '"') {
          field += '"'
          state = 'quoted'
        } else if (ch === delimiter) {
          fields.push(field)
          field = ''
          state = 'start'
        } else {
          problem ??= `column ${fields.length + 1}: unexpected ${JSON.stringify(ch)} after a closing quote`
          field += ch
          state = 'plain'
        }
        continue
      }
      if (ch === delimiter) {
        fields.push(field)
        field = ''
        state = 'start'
      } else if (state === 'start' && ch === '"') {
        state = 'quoted'
      } else {
        field += ch
        state = 'plain'
      }
    }
  }
  if (state === 'quoted') throw new DataError('unterminated quoted field (a " is never closed)', {file, line: rowLine})
  const last = endRow()
  if (last) yield last
}

export const reader = splitFileReader('delimited', ['sts', 'ir'], async function* (request: ReadRequest): AsyncGenerator<ReadItem> {
  const opts = request.options as DelimitedOptions
  const delimiter = opts.delimiter ?? '\t'
  const task = request.task as 'ir' | 'sts'
  const defaults: FieldMapping | undefined = task === 'sts' && !opts.header ? {text1: 1, text2: 2, score: 3} : undefined
  const mapping = resolveFields(request.task, request.fields, 'delimited', request.fields ? undefined : defaults)
  const kind = trainingKind(task)
  const encoding = encodingOf(request)
  for (const split of request.splits) {
    const file = splitFile(request, split, 'delimited')
    const rows = opts.quoting === 'csv' ? csvRows(file, delimiter, encoding) : plainRows(file, delimiter, encoding)
    let header: string[] | undefined
    let expectedColumns = opts.columns
    let indexOf: (ref: FieldRef) => number = (ref) => (typeof ref === 'number' ? ref - 1 : -1)
    let maxIndex = 0
    for await (const row of rows) {
      const at = {file, line: row.line}
      if (opts.header && !header) {
        header = row.fields.map((h) => h.trim())
        expectedColumns ??= header.length
        const names = header
        for (const [target, ref] of Object.entries(mapping)) {
          if (typeof ref === 'string' && !names.includes(ref))
            throw new DataError(`header has no column ${JSON.stringify(ref)} (wanted for ${target}); its columns are ${names.map((n) => JSON.stringify(n)).join(', ')}`, at)
          if (typeof ref === 'number' && ref > names.length)
            throw new DataError(`fields.${target}: column ${ref} does not exist; the header has ${names.length} columns`, at)
        }
        indexOf = (ref) => (typeof ref === 'number' ? ref - 1 : names.indexOf(ref))
        continue
      }
      if (!header) {
        for (const [target, ref] of Object.entries(mapping)) {
          if (typeof ref === 'string')
            throw new DataError(`fields.${target}: column name ${JSON.stringify(ref)} needs header: true (without a header use 1-based column numbers)`)
        }
      }
      if (maxIndex === 0) maxIndex = Math.max(...Object.values(mapping).map((r) => indexOf(r) + 1))
      if (row.problem) {
        yield {type: 'reject', kind, split: split.name, at, reason: `malformed CSV: ${row.problem}`, raw: excerpt(row.raw)}
        continue
      }
      const n = row.fields.length
      if (expectedColumns !== undefined && n !== expectedColumns) {
        yield {type: 'reject', kind, split: split.name, at, reason: `wrong column count: expected ${expectedColumns} fields, got ${n}`, raw: excerpt(row.raw)}
        continue
      }
      if (n < maxIndex) {
        yield {type: 'reject', kind, split: split.name, at, reason: `wrong column count: expected at least ${maxIndex} fields, got ${n}`, raw: excerpt(row.raw)}
        continue
      }
      yield mappedItem(task, mapping, {
        split: split.name,
        at,
        value: (ref) => row.fields[indexOf(ref)],
        fallbackId: String(row.line),
        raw: () => excerpt(row.raw),
      })
    }
    if (opts.header && !header) throw new DataError('empty file: expected a header line', {file, line: 1})
  }
})
