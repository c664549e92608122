/**
 * Row filters: a dataset's `filter` keeps only the rows whose fields pass every comparison, e.g.
 * OCNLI's `[{field: genre, op: "==", value: news}]` or a scored QA file's
 * `[{field: label, op: "in", value: [0, 1]}]`. A row that fails one is counted as `unused` with the
 * comparison as its reason (never dropped silently); rejects pass through untouched.
 *
 * `field` is a source field — a column name or 1-based column number, a JSON key or dotted path —
 * for readers that expose their rows (delimited, json, parquet, hf-arrow, nli's json/delimited
 * formats, sts-gold); for the others, and when the source row lacks it, a field of the draft record
 * (text1, text2, score, query, id…). A field absent from both compares as missing: it passes only
 * `!=` and `not in`.
 *
 * Comparisons: `==`, `!=`, `in`, `not in` compare numbers numerically when both sides are numbers or
 * numeric strings ("1" == 1, "5.0" == 5), else as strings; `<`, `<=`, `>`, `>=` need numbers on both
 * sides (a row whose value is not a number fails them, with that reason).
 */
import {DataError, type ReadItem} from './types.js'

export type FilterOp = '==' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not in'
export const FILTER_OPS: readonly FilterOp[] = ['==', '!=', '<', '<=', '>', '>=', 'in', 'not in']

export interface RowFilter {
  field: string | number
  op: FilterOp
  value: string | number | boolean | (string | number | boolean)[]
}

const NUMBER_RE = /^\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*$/

/** A number when `v` is one or a numeric string, else undefined. */
export function numeric(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v
  if (typeof v === 'bigint') return Number(v)
  if (typeof v === 'string' && NUMBER_RE.test(v)) return Number(v)
  return undefined
}

function same(a: unknown, b: unknown): boolean {
  const x = numeric(a)
  const y = numeric(b)
  if (x !== undefined && y !== undefined) return x === y
  return String(a) === String(b)
}

function describe(f: RowFilter): string {
  return `${typeof f.field === 'number' ? `column ${f.field}` : f.field} ${f.op} ${JSON.stringify(f.value)}`
}

/** Checks a dataset's filters (shapes the schema cannot express); `where` names the dataset. */
export function checkFilters(filters: unknown, where: string): RowFilter[] {
  if (filters === undefined) return []
  if (!Array.isArray(filters)) throw new DataError(`${where}.filter: expected a list of {field, op, value}, got ${JSON.stringify(filters)}`)
  return filters.map((f, i) => {
    const at = `${where}.filter[${i}]`
    if (!f || typeof f !== 'object' || (typeof f.field !== 'string' && typeof f.field !== 'number'))
      throw new DataError(`${at}: expected {field, op, value} with a field name or column number, got ${JSON.stringify(f)}`)
    if (!FILTER_OPS.includes(f.op)) throw new DataError(`${at}.op: expected one of ${FILTER_OPS.join(', ')}, got ${JSON.stringify(f.op)}`)
    const list = f.op === 'in' || f.op === 'not in'
    if (list !== Array.isArray(f.value)) throw new DataError(`${at}.value: "${f.op}" compares with ${list ? 'a list of values' : 'one value'}, got ${JSON.stringify(f.value)}`)
    if (!list && f.op !== '==' && f.op !== '!=' && numeric(f.value) === undefined)
      throw new DataError(`${at}.value: "${f.op}" compares numbers, got ${JSON.stringify(f.value)}`)
    return f as RowFilter
  })
}

/** Why a value fails `f`, or undefined when it passes. */
export function failure(f: RowFilter, value: unknown): string | undefined {
  const missing = value === undefined
  let pass: boolean
  switch (f.op) {
    case '==':
      pass = !missing && same(value, f.value)
      break
    case '!=':
      pass = missing || !same(value, f.value)
      break
    case 'in':
      pass = !missing && (f.value as unknown[]).some((v) => same(value, v))
      break
    case 'not in':
      pass = missing || !(f.value as unknown[]).some((v) => same(value, v))
      break
    default: {
      const x = numeric(value)
      if (x === undefined) return `filter ${describe(f)}: ${missing ? 'field missing' : 'not a number'}`
      const y = numeric(f.value)!
      pass = f.op === '<' ? x < y : f.op === '<=' ? x <= y : f.op === '>' ? x > y : x >= y
    }
  }
  return pass ? undefined : `filter ${describe(f)}: not met`
}

/** The value a filter field names in a row item: the source row's, else the draft's. */
function valueOf(item: ReadItem & {type: 'row'}, field: string | number): unknown {
  const v = item.source?.(field)
  if (v !== undefined) return v
  return typeof field === 'string' ? (item.row as unknown as Record<string, unknown>)[field] : undefined
}

/** Rows failing a filter become `unused` items (reason: the first comparison they fail). */
export async function* filterRows(items: AsyncIterable<ReadItem>, filters: readonly RowFilter[]): AsyncGenerator<ReadItem> {
  for await (const item of items) {
    if (item.type !== 'row' || filters.length === 0) {
      yield item
      continue
    }
    let reason: string | undefined
    for (const f of filters) if ((reason = failure(f, valueOf(item, f.field))) !== undefined) break
    if (reason === undefined) yield item
    else yield {type: 'unused', split: item.split, at: item.at, reason}
  }
}
