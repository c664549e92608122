/**
 * Validation and conversion of reader drafts into record rows. Every reader shares these checks,
 * so "empty text", "not a number", "label out of range", "IR example without a positive" read the
 * same whatever the source format. Each check returns a reason string; `prepare` attaches file:line.
 */
import type {CorpusRecord, IrExampleRecord, QrelRecord, QueryRecord, StsPairRecord} from '../io/arrow-records.js'
import type {CorpusDraft, IrDraft, QrelDraft, QueryDraft, StsDraft} from './types.js'

/**
 * A dataset's declared STS label range. Scores are normalised as (raw - min) / (max - min);
 * with `values`, a raw label must be one of them (min/max are their extremes).
 */
export interface LabelRange {
  min: number
  max: number
  values?: number[]
}

export type LabelRangeConfig = {min: number; max: number} | {values: number[]}

export function resolveLabelRange(config: LabelRangeConfig): LabelRange {
  if ('values' in config) {
    const values = [...new Set(config.values)].sort((a, b) => a - b)
    if (values.length < 2) throw new Error(`labelRange.values: expected at least two distinct labels, got ${JSON.stringify(config.values)}`)
    return {min: values[0], max: values[values.length - 1], values}
  }
  if (!(config.max > config.min)) throw new Error(`labelRange: expected max > min, got min ${config.min}, max ${config.max}`)
  return {min: config.min, max: config.max}
}

export function describeLabelRange(range: LabelRange): string {
  return range.values ? `{${range.values.join(', ')}}` : `[${range.min}, ${range.max}]`
}

type Result<T> = {ok: true; value: T} | {ok: false; reason: string}
const fail = <T>(reason: string): Result<T> => ({ok: false, reason})

function show(value: unknown): string {
  if (value === undefined) return 'nothing (field missing)'
  if (typeof value === 'number' && Number.isNaN(value)) return 'NaN'
  const s = JSON.stringify(value)
  return s === undefined ? String(value) : s.length > 80 ? `${s.slice(0, 80)}…` : s
}

const NUMBER_RE = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/

/** A finite number from a number or a numeric string ("3.8", " 1 "); otherwise a reason. */
export function toNumber(value: unknown, field: string): Result<number> {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return fail(`${field}: expected a finite number, got ${show(value)}`)
    return {ok: true, value}
  }
  if (typeof value === 'bigint') return {ok: true, value: Number(value)}
  if (typeof value === 'string' && NUMBER_RE.test(value.trim())) return {ok: true, value: Number(value.trim())}
  return fail(`${field}: expected a number, got ${show(value)}`)
}

/** A non-empty (after trimming) string; numbers are accepted for ids only. Returns it trimmed. */
export function toText(value: unknown, field: string): Result<string> {
  if (typeof value !== 'string') return fail(`${field}: expected a text string, got ${show(value)}`)
  const t = value.trim()
  if (t === '') return fail(`${field}: empty text`)
  return {ok: true, value: t}
}

export function toId(value: unknown, field: string): Result<string> {
  if (typeof value === 'number' && Number.isFinite(value)) return {ok: true, value: String(value)}
  if (typeof value === 'bigint') return {ok: true, value: String(value)}
  if (typeof value === 'string' && value.trim() !== '') return {ok: true, value: value.trim()}
  return fail(`${field}: expected a non-empty id (string or number), got ${show(value)}`)
}

function optionalString(value: unknown, field: string, fallback: string): Result<string> {
  if (value === undefined || value === null) return {ok: true, value: fallback}
  if (typeof value !== 'string') return fail(`${field}: expected a string, got ${show(value)}`)
  return {ok: true, value: value.trim() || fallback}
}

/** Converts every element (named `field[i]` in a reason); the first failure is the result. */
function convertEach<T>(list: readonly unknown[], field: string, convert: (value: unknown, field: string) => Result<T>): Result<T[]> {
  const out: T[] = []
  for (let i = 0; i < list.length; i++) {
    const r = convert(list[i], `${field}[${i}]`)
    if (!r.ok) return r
    out.push(r.value)
  }
  return {ok: true, value: out}
}

/** A draft's own id, or the reader's fallback (e.g. the line number) when it has none. */
function idOrFallback(value: unknown, fallbackId: string): Result<string> {
  return value === undefined || value === null || value === '' ? {ok: true, value: fallbackId} : toId(value, 'id')
}

function textList(value: unknown, field: string): Result<string[]> {
  if (value === undefined || value === null) return {ok: true, value: []}
  const list = typeof value === 'string' ? [value] : value
  if (!Array.isArray(list)) return fail(`${field}: expected a list of texts, got ${show(value)}`)
  return convertEach(list, field, toText)
}

function scoreList(value: unknown, field: string, expectedLength: number, listField: string): Result<number[] | null> {
  if (value === undefined || value === null) return {ok: true, value: null}
  if (!Array.isArray(value)) return fail(`${field}: expected a list of numbers, got ${show(value)}`)
  if (value.length !== expectedLength)
    return fail(`${field}: expected ${expectedLength} scores (one per entry of ${listField}), got ${value.length}`)
  return convertEach(value, field, toNumber)
}

export function toStsPair(d: StsDraft, fallbackId: string, range: LabelRange, instruction: string): Result<StsPairRecord> {
  const id = idOrFallback(d.id, fallbackId)
  if (!id.ok) return id
  const t1 = toText(d.text1, 'text1')
  if (!t1.ok) return t1
  const t2 = toText(d.text2, 'text2')
  if (!t2.ok) return t2
  const raw = toNumber(d.score, 'score')
  if (!raw.ok) return raw
  const r = raw.value
  if (range.values ? !range.values.includes(r) : r < range.min || r > range.max)
    return fail(`score: label ${r} is outside the declared label range ${describeLabelRange(range)}`)
  const ins = optionalString(d.instruction, 'instruction', instruction)
  if (!ins.ok) return ins
  return {
    ok: true,
    value: {id: id.value, text1: t1.value, text2: t2.value, score: (r - range.min) / (range.max - range.min), raw_score: r, instruction: ins.value},
  }
}

export function toIrExample(d: IrDraft, fallbackId: string, instruction: string): Result<IrExampleRecord> {
  const id = idOrFallback(d.id, fallbackId)
  if (!id.ok) return id
  const q = toText(d.query, 'query')
  if (!q.ok) return q
  const pos = textList(d.positives, 'positives')
  if (!pos.ok) return pos
  if (pos.value.length === 0) return fail('positives: IR example without a positive')
  const neg = textList(d.negatives, 'negatives')
  if (!neg.ok) return neg
  const ps = scoreList(d.positive_scores, 'positive_scores', pos.value.length, 'positives')
  if (!ps.ok) return ps
  const ns = scoreList(d.negative_scores, 'negative_scores', neg.value.length, 'negatives')
  if (!ns.ok) return ns
  const ins = optionalString(d.instruction, 'instruction', instruction)
  if (!ins.ok) return ins
  return {
    ok: true,
    value: {
      id: id.value,
      query: q.value,
      instruction: ins.value,
      positives: pos.value,
      negatives: neg.value,
      positive_scores: ps.value,
      negative_scores: ns.value,
    },
  }
}

/** A corpus document needs an id and some text; an empty body is allowed when it has a title. */
export function toCorpusDoc(d: CorpusDraft): Result<CorpusRecord> {
  const id = toId(d.id, 'id')
  if (!id.ok) return id
  const title = optionalString(d.title, 'title', '')
  if (!title.ok) return title
  if (d.text !== undefined && d.text !== null && typeof d.text !== 'string') return fail(`text: expected a text string, got ${show(d.text)}`)
  const text = typeof d.text === 'string' ? d.text.trim() : ''
  if (text === '' && title.value === '') return fail('text: empty text (and no title)')
  return {ok: true, value: {id: id.value, title: title.value, text}}
}

export function toQuery(d: QueryDraft, instruction: string): Result<QueryRecord> {
  const id = toId(d.id, 'id')
  if (!id.ok) return id
  const t = toText(d.text, 'text')
  if (!t.ok) return t
  const ins = optionalString(d.instruction, 'instruction', instruction)
  if (!ins.ok) return ins
  return {ok: true, value: {id: id.value, text: t.value, instruction: ins.value}}
}

export function toQrel(d: QrelDraft): Result<QrelRecord> {
  const q = toId(d.query_id, 'query_id')
  if (!q.ok) return q
  const c = toId(d.corpus_id, 'corpus_id')
  if (!c.ok) return c
  const s = toNumber(d.score, 'score')
  if (!s.ok) return s
  if (!Number.isInteger(s.value) || Math.abs(s.value) > 2 ** 31 - 1) return fail(`score: expected an integer relevance grade, got ${show(d.score)}`)
  return {ok: true, value: {query_id: q.value, corpus_id: c.value, score: s.value}}
}
