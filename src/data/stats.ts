/**
 * Statistics `prepare` reports per output file: rows, rejected rows, text length percentiles (in
 * characters, i.e. Unicode code points), the label histogram of STS pairs, and positives/negatives
 * per query. Everything is kept as counts (length -> count), so memory does not grow with rows.
 */
import type {AnyRecord, IrExampleRecord, QrelRecord, RecordKind, StsPairRecord} from '../io/arrow-records.js'
import type {LabelRange} from './validate.js'

/** Code points in a string (a surrogate pair is one character). */
const SURROGATE = /[\uD800-\uDBFF]/

export function charLength(s: string): number {
  // Most text has no astral characters: a native regex scan is far cheaper than a JS loop.
  if (!SURROGATE.test(s)) return s.length
  let n = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0xd800 && c <= 0xdbff) n--
  }
  return n
}

export interface Distribution {
  count: number
  min: number
  mean: number
  p50: number
  p90: number
  p99: number
  max: number
}

/** Exact percentiles of integer values from their counts. */
export class CountHistogram {
  private readonly counts = new Map<number, number>()
  private n = 0
  private sum = 0
  add(value: number): void {
    this.counts.set(value, (this.counts.get(value) ?? 0) + 1)
    this.n++
    this.sum += value
  }
  summary(): Distribution | undefined {
    if (this.n === 0) return undefined
    const keys = [...this.counts.keys()].sort((a, b) => a - b)
    const at = (q: number) => {
      // nearest-rank percentile
      const rank = Math.max(1, Math.ceil(q * this.n))
      let seen = 0
      for (const k of keys) {
        seen += this.counts.get(k)!
        if (seen >= rank) return k
      }
      return keys[keys.length - 1]
    }
    return {count: this.n, min: keys[0], mean: round(this.sum / this.n), p50: at(0.5), p90: at(0.9), p99: at(0.99), max: keys[keys.length - 1]}
  }
}

const round = (x: number) => Math.round(x * 1000) / 1000
const MAX_EXACT_LABELS = 32

/** Label counts: exact per raw label while there are few distinct labels, else ten equal bins over the declared range. */
export class LabelHistogram {
  private readonly exact = new Map<number, number>()
  private bins: number[] | undefined
  constructor(private readonly range: LabelRange) {}
  add(raw: number): void {
    if (!this.bins) {
      this.exact.set(raw, (this.exact.get(raw) ?? 0) + 1)
      if (this.exact.size > MAX_EXACT_LABELS) {
        this.bins = new Array(10).fill(0)
        for (const [v, c] of this.exact) this.bins[this.bin(v)] += c
        this.exact.clear()
      }
      return
    }
    this.bins[this.bin(raw)]++
  }
  private bin(v: number): number {
    const {min, max} = this.range
    return Math.min(9, Math.max(0, Math.floor(((v - min) / (max - min)) * 10)))
  }
  /** `{"<label>": count}` or `{"[a, b)": count}` for bins. */
  summary(): Record<string, number> {
    if (!this.bins) return Object.fromEntries([...this.exact.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => [String(k), v]))
    const {min, max} = this.range
    const w = (max - min) / 10
    return Object.fromEntries(this.bins.map((c, i) => [`[${round(min + i * w)}, ${round(min + (i + 1) * w)}${i === 9 ? ']' : ')'}`, c]))
  }
}

export interface FileStatistics {
  rows: number
  rejected: number
  /** Characters per text field (ir: query/positive/negative; sts: text; corpus/queries: text). */
  textLength: Record<string, Distribution>
  /** STS: raw label -> count (or bins). */
  labels?: Record<string, number>
  /** IR examples: positives and negatives per query; qrels: judgements and positives (score > 0) per query. */
  perQuery?: Record<string, Distribution>
}

/** Accumulates the statistics of one output file. */
export class StatsCollector {
  rows = 0
  rejected = 0
  private readonly lengths = new Map<string, CountHistogram>()
  private readonly labels?: LabelHistogram
  private readonly perQuery = new Map<string, CountHistogram>()
  /** qrels: query id -> [judged, positive]. */
  private readonly qrelCounts?: Map<string, [number, number]>

  constructor(
    readonly kind: RecordKind,
    range?: LabelRange,
  ) {
    if (kind === 'sts-pair' && range) this.labels = new LabelHistogram(range)
    if (kind === 'qrels') this.qrelCounts = new Map()
  }

  private length(field: string, text: string): void {
    let h = this.lengths.get(field)
    if (!h) this.lengths.set(field, (h = new CountHistogram()))
    h.add(charLength(text))
  }

  private count(field: string, n: number): void {
    let h = this.perQuery.get(field)
    if (!h) this.perQuery.set(field, (h = new CountHistogram()))
    h.add(n)
  }

  add(record: AnyRecord): void {
    this.rows++
    switch (this.kind) {
      case 'sts-pair': {
        const r = record as StsPairRecord
        this.length('text', r.text1)
        this.length('text', r.text2)
        this.labels?.add(r.raw_score)
        break
      }
      case 'ir-example': {
        const r = record as IrExampleRecord
        this.length('query', r.query)
        for (const p of r.positives) this.length('positive', p)
        for (const n of r.negatives) this.length('negative', n)
        this.count('positives', r.positives.length)
        this.count('negatives', r.negatives.length)
        break
      }
      case 'qrels': {
        const r = record as QrelRecord
        const c = this.qrelCounts!.get(r.query_id) ?? [0, 0]
        c[0]++
        if (r.score > 0) c[1]++
        this.qrelCounts!.set(r.query_id, c)
        break
      }
      default:
        this.length('text', (record as {text: string}).text)
    }
  }

  summary(): FileStatistics {
    const out: FileStatistics = {rows: this.rows, rejected: this.rejected, textLength: {}}
    for (const [k, h] of this.lengths) out.textLength[k] = h.summary()!
    if (this.labels) out.labels = this.labels.summary()
    if (this.qrelCounts) {
      for (const [judged, positive] of this.qrelCounts.values()) {
        this.count('judged', judged)
        this.count('positives', positive)
      }
      this.qrelCounts.clear()
    }
    if (this.perQuery.size) out.perQuery = Object.fromEntries([...this.perQuery].map(([k, h]) => [k, h.summary()!]))
    return out
  }
}
