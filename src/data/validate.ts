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

/** What ends a conversion at its first failing check (see `converted`). */
class Failed {
  constructor(readonly reason: string) {}
}

/** Ends the conversion in progress with `reason`. */
function reject(reason: string): never {
  throw new Failed(reason)
}

/** The value of a passing check; a failing one ends the conversion in progress with its reason. */
function valid<T>(result: Result<T>): T {
  if (!result.ok) reject(result.reason)
  return result.value
}

/**
 * Runs a conversion written as a sequence of checks (`valid`, `reject`): its value, or the reason
 * of the first check that failed.
 */
function converted<T>(convert: () => T): Result<T> {
  try {
    return {ok: true, value: convert()}
  } catch (error) {
    if (error instanceof Failed) return fail(error.reason)
    throw error
  }
}

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
  return converted(() => {
    const id = valid(idOrFallback(d.id, fallbackId))
    const text1 = valid(toText(d.text1, 'text1'))
    const text2 = valid(toText(d.text2, 'text2'))
    const r = valid(toNumber(d.score, 'score'))
    if (range.values ? !range.values.includes(r) : r < range.min || r > range.max)
      reject(`score: label ${r} is outside the declared label range ${describeLabelRange(range)}`)
    const score = (r - range.min) / (range.max - range.min)
    return {id, text1, text2, score, raw_score: r, instruction: valid(optionalString(d.instruction, 'instruction', instruction))}
  })
}

export function toIrExample(d: IrDraft, fallbackId: string, instruction: string): Result<IrExampleRecord> {
  return converted(() => {
    const id = valid(idOrFallback(d.id, fallbackId))
    const query = valid(toText(d.query, 'query'))
    const positives = valid(textList(d.positives, 'positives'))
    if (positives.length === 0) reject('positives: IR example without a positive')
    const negatives = valid(textList(d.negatives, 'negatives'))
    const positiveScores = valid(scoreList(d.positive_scores, 'positive_scores', positives.length, 'positives'))
    const negativeScores = valid(scoreList(d.negative_scores, 'negative_scores', negatives.length, 'negatives'))
    return {
      id,
      query,
      instruction: valid(optionalString(d.instruction, 'instruction', instruction)),
      positives,
      negatives,
      positive_scores: positiveScores,
      negative_scores: negativeScores,
    }
  })
}

/** A corpus document needs an id and some text; an empty body is allowed when it has a title. */
export function toCorpusDoc(d: CorpusDraft): Result<CorpusRecord> {
  return converted(() => {
    const id = valid(toId(d.id, 'id'))
    const title = valid(optionalString(d.title, 'title', ''))
    if (d.text !== undefined && d.text !== null && typeof d.text !== 'string') reject(`text: expected a text string, got ${show(d.text)}`)
    const text = typeof d.text === 'string' ? d.text.trim() : ''
    if (text === '' && title === '') reject('text: empty text (and no title)')
    return {id, title, text}
  })
}

export function toQuery(d: QueryDraft, instruction: string): Result<QueryRecord> {
  return converted(() => {
    const id = valid(toId(d.id, 'id'))
    const text = valid(toText(d.text, 'text'))
    return {id, text, instruction: valid(optionalString(d.instruction, 'instruction', instruction))}
  })
}

export function toQrel(d: QrelDraft): Result<QrelRecord> {
  return converted(() => {
    const queryId = valid(toId(d.query_id, 'query_id'))
    const corpusId = valid(toId(d.corpus_id, 'corpus_id'))
    const score = valid(toNumber(d.score, 'score'))
    if (!Number.isInteger(score) || Math.abs(score) > 2 ** 31 - 1) reject(`score: expected an integer relevance grade, got ${show(d.score)}`)
    return {query_id: queryId, corpus_id: corpusId, score}
  })
}
