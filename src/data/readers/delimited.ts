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
 * - `header`: `false` (default): every line is data; `true`: the first line of each file names the
 *   columns; `auto`: a file's first line is a header when `fields` names columns, or when it looks
 *   like one (`looksLikeHeader`). With `false`, a first line that looks like a header is read as data
 *   and warned about (an IR file's header would otherwise become a training example unnoticed).
 * - `columns`: the exact number of fields every row must have (with a header, its length by default);
 *   otherwise a row only needs the columns that `fields` refers to. Rows with another count are
 *   rejected as "wrong column count".
 * - `encoding`: the files' text encoding (default utf-8; gbk, big5, … — src/data/text-decoder.ts).
 *
 * Relations: the `json` reader does the same for JSON objects; `prepare` validates the drafts.
 */
import {resolveFields, type FieldMapping, type FieldRef} from '../mapping.js'
import {decodedChunks, excerpt, readLineBatches} from '../text-input.js'
import {numeric} from '../row-filter.js'
import {DataError, type ReadItem, type ReadRequest} from '../types.js'
import {encodingOf, mappedItem, splitFile, splitFileReader, trainingKind} from './common.js'

export interface DelimitedOptions {
  delimiter?: string
  quoting?: 'none' | 'csv'
  header?: boolean | 'auto'
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

/**
 * Whether a first row looks like column names: distinct, short, none ending like a sentence, and
 * either all identifier-like ASCII (`pair_ID`, `sentence_A`, `relatedness_score`) or non-numeric
 * where the second row is numeric (`score` above `4.5`).
 */
export function looksLikeHeader(first: readonly string[], second?: readonly string[]): boolean {
  const cells = first.map((c) => c.trim())
  if (cells.length < 2 || new Set(cells).size !== cells.length) return false
  if (cells.some((c) => c === '' || c.length > 64 || /[.?!。？！]$/.test(c))) return false
  if (cells.every((c) => /^[A-Za-z_][A-Za-z0-9_-]*$/.test(c))) return true
  const wordy = cells.some((c) => c.split(/\s+/).length > 3)
  return !wordy && !!second && cells.some((c, i) => numeric(c) === undefined && second[i] !== undefined && numeric(second[i]) !== undefined)
}

/** A file's rows with its first two read ahead (to decide on its header). */
async function peekRows(rows: AsyncGenerator<Row>): Promise<{head: Row[]; all: AsyncGenerator<Row>}> {
  const head: Row[] = []
  for (let i = 0; i < 2; i++) {
    const r = await rows.next()
    if (r.done) break
    head.push(r.value)
  }
  return {
    head,
    all: (async function* () {
      yield* head
      yield* rows
    })(),
  }
}

export const reader = splitFileReader('delimited', ['sts', 'ir'], async function* (request: ReadRequest): AsyncGenerator<ReadItem> {
  const opts = request.options as DelimitedOptions
  const delimiter = opts.delimiter ?? '\t'
  const task = request.task as 'ir' | 'sts'
  const defaults: FieldMapping | undefined = task === 'sts' && opts.header !== true ? {text1: 1, text2: 2, score: 3} : undefined
  const mapping = resolveFields(request.task, request.fields, 'delimited', request.fields ? undefined : defaults)
  const kind = trainingKind(task)
  const encoding = encodingOf(request)
  for (const split of request.splits) {
    const file = splitFile(request, split, 'delimited')
    const {head, all: rows} = await peekRows(opts.quoting === 'csv' ? csvRows(file, delimiter, encoding) : plainRows(file, delimiter, encoding))
    const looks = head.length > 0 && looksLikeHeader(head[0].fields, head[1]?.fields)
    const named = Object.values(mapping).some((ref) => typeof ref === 'string')
    const hasHeader = opts.header === 'auto' ? named || looks : opts.header === true
    if (!hasHeader && looks)
      yield {
        type: 'warning',
        split: split.name,
        at: {file, line: head[0].line},
        message: `the first line looks like a header (${head[0].fields.map((f) => JSON.stringify(f.trim())).join(', ')}) but is read as data (options.header is ${opts.header ?? 'false (the default)'}); set options.header: true, or auto`,
      }
    let header: string[] | undefined
    let expectedColumns = opts.columns
    let indexOf: (ref: FieldRef) => number = (ref) => (typeof ref === 'number' ? ref - 1 : -1)
    let maxIndex = 0
    for await (const row of rows) {
      const at = {file, line: row.line}
      if (hasHeader && !header) {
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
    if (opts.header === true && !header) throw new DataError('empty file: expected a header line', {file, line: 1})
  }
})
