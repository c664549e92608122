/**
 * Row checks of codiemb record files against their layout: the Arrow fields of arrow-layouts.ts and
 * the constraints of data-schemas/records/<kind>.schema.json (minLength, minItems, minimum, maximum,
 * nullability), plus what a JSON Schema cannot say: every number is finite, an ir-example's score
 * lists have one score per text, and an sts-pair's raw_score lies in the dataset's label range with
 * score = (raw_score − min) / (max − min).
 *
 * Every check concerns one row and needs nothing from other rows, so a streaming reader runs them
 * batch by batch as it reads, and they come in two parts:
 *
 * - `columnProblems(batch, firstRow, sink)`: numeric, count and length checks straight from a record
 *   batch's columns and offsets (nulls, non-finite or out-of-range numbers, empty texts, empty
 *   lists, mismatched list lengths), without decoding a string. Run when a batch is first read.
 * - `textProblem(row, fileRow)`: checks that need the decoded text (a text that is only white
 *   space). Run as each training batch is assembled.
 *
 * `schemaProblems(schema)` checks the columns themselves (a missing `text2`, a Utf8 `score`) when a
 * file is opened. Problems name the row (0-based, as in the file) and the field.
 */
import {DataType, Precision, type Data, type DataType as AnyType, type RecordBatch, type Schema, type Vector} from 'apache-arrow'
import {readSchema} from '../config/schema.js'
import {recordFields, type RecordKind} from './arrow-layouts.js'

/** One way a row breaks its layout. */
export interface RowProblem {
  /** Row in the file, 0-based. */
  row: number
  id?: string
  /** The field, with an item index for list items (`negatives[2]`). */
  field: string
  expected: string
  got: string
}

/** A dataset's declared label range (data/validate.ts LabelRange), as STS checks use it. */
export interface LabelRangeLike {
  min: number
  max: number
  values?: number[]
}

export interface RecordCheckOptions {
  /** sts-pair: the label range raw_score must lie in. */
  labelRange?: LabelRangeLike
  /** Where the label range was declared, for messages (e.g. "manifest.json"). */
  labelRangeSource?: string
}

/** What data-schemas/records/<kind>.schema.json says about one field. */
type Rule =
  | {field: string; type: 'text'; nullable: boolean; minLength: number}
  | {field: string; type: 'number'; nullable: boolean; minimum?: number; maximum?: number}
  | {field: string; type: 'list'; nullable: boolean; item: 'text' | 'number'; minItems: number; itemMinLength: number}

interface PropertySchema {
  type?: string | string[]
  minLength?: number
  minimum?: number
  maximum?: number
  minItems?: number
  items?: PropertySchema
}

const rulesCache = new Map<RecordKind, Rule[]>()

/** The per-field rules of a record kind, read from its JSON Schema in data-schemas/records/. */
export function layoutRules(kind: RecordKind): Rule[] {
  let rules = rulesCache.get(kind)
  if (rules) return rules
  const schema = readSchema(`records/${kind}.schema.json`) as {properties: Record<string, PropertySchema>; 'x-arrow-field-order': string[]}
  rules = schema['x-arrow-field-order'].map((field): Rule => {
    const p = schema.properties[field]!
    const types = [p.type ?? []].flat()
    const nullable = types.includes('null')
    if (types.includes('array')) {
      const items = p.items ?? {}
      return {field, type: 'list', nullable, item: items.type === 'string' ? 'text' : 'number', minItems: p.minItems ?? 0, itemMinLength: items.minLength ?? 0}
    }
    if (types.includes('string')) return {field, type: 'text', nullable, minLength: p.minLength ?? 0}
    return {field, type: 'number', nullable, minimum: p.minimum, maximum: p.maximum}
  })
  rulesCache.set(kind, rules)
  return rules
}

/** Whether a column of type `actual` can stand for the layout's `expected` (any 32/64-bit float for Float32). */
function compatible(expected: AnyType, actual: AnyType): boolean {
  if (DataType.isFloat(expected)) return DataType.isFloat(actual) && actual.precision !== Precision.HALF
  if (DataType.isList(expected)) return DataType.isList(actual) && compatible(expected.valueType, actual.valueType)
  if (DataType.isFixedSizeList(expected)) return DataType.isFixedSizeList(actual) && actual.listSize === expected.listSize && compatible(expected.valueType, actual.valueType)
  return String(expected) === String(actual)
}

function describeNumber(rule: {minimum?: number; maximum?: number}): string {
  if (rule.minimum !== undefined && rule.maximum !== undefined) return `a finite number in [${rule.minimum}, ${rule.maximum}]`
  if (rule.minimum !== undefined) return `a finite number ≥ ${rule.minimum}`
  if (rule.maximum !== undefined) return `a finite number ≤ ${rule.maximum}`
  return 'a finite number'
}

/** `[0, 5]`, or `{0, 1}` for a range of listed labels. */
export function describeLabelRange(range: LabelRangeLike): string {
  return range.values ? `{${range.values.join(', ')}}` : `[${range.min}, ${range.max}]`
}

/** The row checks of one record kind (see the module comment); build one per file. */
export class RecordChecker {
  readonly rules: Rule[]
  private readonly labels?: {range: LabelRangeLike; allowed?: Set<number>; source: string}

  constructor(
    readonly kind: RecordKind,
    options: RecordCheckOptions = {},
  ) {
    this.rules = layoutRules(kind)
    if (options.labelRange && kind === 'sts-pair') {
      const range = options.labelRange
      this.labels = {range, allowed: range.values && new Set(range.values.map(Math.fround)), source: options.labelRangeSource ?? 'the dataset'}
    }
  }

  /** The layout's columns missing from `schema`, of another type, or not part of the layout. `dim`: embeddings' vector size. */
  schemaProblems(schema: Schema, dim?: number): string[] {
    const problems: string[] = []
    const expected = recordFields(this.kind, this.kind === 'embeddings' ? (dim ?? 1) : undefined)
    const actual = new Map(schema.fields.map((f) => [f.name, f]))
    for (const field of expected) {
      const found = actual.get(field.name)
      if (!found) problems.push(`${field.name}: expected a ${String(field.type)} column, but the file has none`)
      else if (!compatible(field.type, found.type)) problems.push(`${field.name}: expected a ${String(field.type)} column, got ${String(found.type)}`)
    }
    const known = new Set(expected.map((f) => f.name))
    for (const f of schema.fields) if (!known.has(f.name)) problems.push(`${f.name}: not a column of the ${this.kind} layout (${[...known].join(', ')})`)
    return problems
  }

  /**
   * Numeric, count and length checks of every row of `batch` (whose first row is file row
   * `firstRow`), from its columns and offsets; each problem goes to `sink`. Assumes the batch's
   * schema passed schemaProblems. `ids: false`: leave problems without the row's id (a batch built
   * without its text bytes, record-rows.ts columnsOnly; the caller adds ids to the problems it lists).
   */
  columnProblems(batch: RecordBatch, firstRow: number, sink: (problem: RowProblem) => void, options: {ids?: boolean} = {}): void {
    const ids = options.ids === false ? null : (batch.getChild('id') as Vector | null)
    const report = (i: number, field: string, expected: string, got: string) => {
      const id = ids?.isValid(i) ? String(ids.get(i)) : undefined
      sink({row: firstRow + i, ...(id === undefined ? {} : {id}), field, expected, got})
    }
    const n = batch.numRows
    const counts = new Map<string, (i: number) => number | undefined>()
    for (const rule of this.rules) {
      const column = batch.getChild(rule.field) as Vector
      const data = column.data[0] as Data
      const valid = validity(data)
      if (rule.type === 'text') {
        const len = lengths(data)
        for (let i = 0; i < n; i++) {
          if (!valid(i)) {
            if (!rule.nullable) report(i, rule.field, 'a text (the layout does not allow null)', 'null')
            continue
          }
          const l = len(i)
          if (l === undefined) report(i, rule.field, 'a text within the column', 'offsets outside it (damaged file)')
          else if (l < rule.minLength) report(i, rule.field, 'a non-empty text', '""')
        }
      } else if (rule.type === 'number') {
        const values = data.values as ArrayLike<number>
        for (let i = 0; i < n; i++) {
          if (!valid(i)) {
            if (!rule.nullable) report(i, rule.field, `${describeNumber(rule)} (the layout does not allow null)`, 'null')
            continue
          }
          const v = values[data.offset + i]!
          if (!Number.isFinite(v) || (rule.minimum !== undefined && v < rule.minimum) || (rule.maximum !== undefined && v > rule.maximum))
            report(i, rule.field, describeNumber(rule), String(v))
        }
      } else {
        const count = lengths(data)
        counts.set(rule.field, (i) => (valid(i) ? count(i) : undefined))
        const child = data.children[0] as Data
        const itemLength = rule.item === 'text' ? lengths(child) : undefined
        const childValues = rule.item === 'number' ? (child.values as ArrayLike<number>) : undefined
        const offsets = data.valueOffsets as Int32Array
        for (let i = 0; i < n; i++) {
          if (!valid(i)) {
            if (!rule.nullable) report(i, rule.field, 'a list (the layout does not allow null)', 'null')
            continue
          }
          const c = count(i)
          if (c === undefined || offsets[data.offset + i + 1]! > child.length) {
            report(i, rule.field, 'a list within the column', 'offsets outside it (damaged file)')
            continue
          }
          if (c < rule.minItems) report(i, rule.field, `at least ${rule.minItems} item${rule.minItems === 1 ? '' : 's'}`, String(c))
          const start = offsets[data.offset + i]!
          for (let k = 0; k < c; k++) {
            if (itemLength) {
              const l = itemLength(start + k)
              if (l === undefined) report(i, `${rule.field}[${k}]`, 'a text within the column', 'offsets outside it (damaged file)')
              else if (l < rule.itemMinLength) report(i, `${rule.field}[${k}]`, 'a non-empty text', '""')
            } else if (!Number.isFinite(childValues![child.offset + start + k]!)) report(i, `${rule.field}[${k}]`, 'a finite number', String(childValues![child.offset + start + k]))
          }
        }
      }
    }
    if (this.kind === 'ir-example') {
      for (const [scores, texts] of [['positive_scores', 'positives'], ['negative_scores', 'negatives']] as const) {
        const scoreCount = counts.get(scores)!
        const textCount = counts.get(texts)!
        for (let i = 0; i < n; i++) {
          const s = scoreCount(i)
          const t = textCount(i)
          if (s !== undefined && t !== undefined && s !== t) report(i, scores, `one score per item of ${texts} (${t}) or null`, `${s} scores`)
        }
      }
    }
    if (this.labels) this.labelProblems(batch, report)
  }

  /** sts-pair: raw_score lies in the label range and score is its normalisation. */
  private labelProblems(batch: RecordBatch, report: (i: number, field: string, expected: string, got: string) => void): void {
    const {range, allowed, source} = this.labels!
    const raw = batch.getChild('raw_score')!.data[0] as Data
    const score = batch.getChild('score')!.data[0] as Data
    const rawValues = raw.values as ArrayLike<number>
    const scoreValues = score.values as ArrayLike<number>
    for (let i = 0; i < batch.numRows; i++) {
      const r = rawValues[raw.offset + i]!
      const s = scoreValues[score.offset + i]!
      if (!Number.isFinite(r) || !Number.isFinite(s)) continue // reported as non-finite already
      if (allowed ? !allowed.has(Math.fround(r)) : r < range.min || r > range.max) report(i, 'raw_score', `a label in ${describeLabelRange(range)} (the label range of ${source})`, String(r))
      else if (s >= 0 && s <= 1) {
        // (A score outside [0, 1] is reported by the layout's own check.)
        const expected = (r - range.min) / (range.max - range.min)
        if (Math.abs(expected - s) > 1e-5) report(i, 'score', `${Math.fround(expected)} = (raw_score − ${range.min}) / (${range.max} − ${range.min})`, String(s))
      }
    }
  }

  /** Checks of one decoded row that need its texts: every text the layout requires non-empty must hold a non-space character. */
  textProblem(record: object, fileRow: number): RowProblem | undefined {
    const row = record as Record<string, unknown>
    const id = typeof row.id === 'string' ? row.id : undefined
    const problem = (field: string, value: unknown): RowProblem => ({row: fileRow, ...(id === undefined ? {} : {id}), field, expected: 'a text with a non-space character', got: JSON.stringify(value)?.slice(0, 60) ?? String(value)})
    for (const rule of this.rules) {
      const value = row[rule.field]
      if (rule.type === 'text' && rule.minLength > 0 && !(typeof value === 'string' && /\S/.test(value))) return problem(rule.field, value)
      if (rule.type === 'list' && rule.item === 'text' && rule.itemMinLength > 0 && Array.isArray(value)) {
        const k = value.findIndex((v) => !(typeof v === 'string' && /\S/.test(v)))
        if (k >= 0) return problem(`${rule.field}[${k}]`, value[k])
      }
    }
    return undefined
  }
}

/** Item lengths of a variable-length column (bytes of a Utf8 value, items of a List), undefined where its offsets are broken. */
/**
 * Whether row i of `data` is valid (not null): apache-arrow's Data.getValid, read straight from the
 * validity bitmap (getValid re-derives the null count and type per call: the start-up column checks
 * of a multi-GB file spent most of their time there).
 */
function validity(data: Data): (i: number) => boolean {
  const bitmap = data.nullBitmap as Uint8Array | undefined
  if (data.nullCount === 0 || !bitmap || bitmap.byteLength === 0) return () => true
  const base = data.offset
  return (i) => ((bitmap[(base + i) >> 3]! >> ((base + i) & 7)) & 1) === 1
}

function lengths(data: Data): (i: number) => number | undefined {
  const offsets = data.valueOffsets as Int32Array
  const base = data.offset
  const limit = DataType.isUtf8(data.type) ? (data.values as Uint8Array).length : Infinity
  return (i) => {
    const a = offsets[base + i]
    const b = offsets[base + i + 1]
    if (a === undefined || b === undefined || b < a || a < 0 || b > limit) return undefined
    return b - a
  }
}

/** One line per problem: `[file: ]row 4 (id "s4"): score: expected a finite number in [0, 1], got NaN`. */
export function formatRowProblem(file: string | undefined, p: RowProblem): string {
  return `${file === undefined ? '' : `${file}: `}row ${p.row}${p.id === undefined ? '' : ` (id ${JSON.stringify(p.id)})`}: ${p.field}: expected ${p.expected}, got ${p.got}`
}
