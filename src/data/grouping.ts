/**
 * Grouping: a flat file of (query, candidate, label) rows — TrecQA/WikiQA-style QA, FAQ exports,
 * scored query–passage pairs — into IR training examples or a retrieval evaluation set. A dataset
 * with `group` is read by its reader as STS-shaped pairs (`fields`: text1 = the query, text2 = the
 * candidate, score = its label); any reader that prepares task sts can be grouped.
 *
 * Config (`group`):
 * - `by`: the source field that identifies a query (a question id column); default the query text.
 * - `positive`: which labels make a candidate relevant: `{min: 1}` (default; label >= min) or
 *   `{values: [1, 2]}`.
 * - `negatives`: the other candidates become the example's hard negatives (default true; false:
 *   they are counted as unused).
 * - `order`: `any` (default) or `consecutive`, how a query's rows lie in the file (task ir only).
 *
 * Task `ir`: one example per query and split: query, its positive candidates, the rest as negatives
 * (a candidate text given twice is kept once; one both positive and negative is a positive).
 * With `order: any` the rows are spilled to hash partitions on disk (one per 32 MiB of input) and each
 * partition is grouped in memory, so memory is bounded by a partition, never by the file; examples
 * come partition by partition, each in order of its first row. With `order: consecutive` a query's
 * rows must be adjacent (as TrecQA and WikiQA list them): nothing is spilled, examples keep file
 * order, and a query whose rows reappear later is warned about (its later rows form another example;
 * to notice, 16 hex digits of each finished query's hash are remembered).
 *
 * Task `eval`: corpus = every distinct candidate text (id `d` + 16 hex digits of its sha1, so the
 * same passage gets the same id in every split and run); queries = every query with at least one
 * positive (id `q` + 16 hex of the sha1 of its key); qrels per split = (query, positive passage,
 * grade): the label when it is an integer >= 1, else 1. Rows need no order. Memory holds the ids
 * seen (as prepare's duplicate-id checks do anyway).
 *
 * Accounting: every row is part of an output, unused with a reason (not a positive in eval; a query
 * with no positive; a duplicate candidate), or rejected (empty text, non-numeric label). A query
 * without any positive is counted, kept out of training and of queries/qrels, and warned about.
 */
import {createHash} from 'node:crypto'
import {closeSync, mkdirSync, openSync, readdirSync, rmSync, statSync, writeSync} from 'node:fs'
import {join} from 'node:path'
import {readLines} from './text-input.js'
import {toNumber, toText} from './validate.js'
import {DataError, type PreparedKind, type ReadItem, type SourceLocation} from './types.js'

export interface GroupConfig {
  by?: string | number
  positive?: {min: number} | {values: number[]}
  negatives?: boolean
  order?: 'any' | 'consecutive'
}

/** What grouping did, in the dataset's result. */
export interface GroupSummary {
  /** Pairs read (valid rows that reached grouping). */
  pairs: number
  queries: number
  /** Queries with no positive candidate: no example, not in queries/qrels. */
  queriesWithoutPositive: number
  positives: number
  negatives: number
}

interface Pair {
  key: string
  split: string
  query: string
  text: string
  score: number
  at: SourceLocation
}

const PARTITION_BYTES = 32 << 20

/** Bytes of a file, or of the files under a directory (a split of Parquet or Arrow shards). */
function sizeOf(path: string): number {
  try {
    const st = statSync(path)
    if (!st.isDirectory()) return st.size
    return readdirSync(path).reduce((sum, name) => sum + sizeOf(join(path, name)), 0)
  } catch {
    return 0 // vanished: the reader reports it
  }
}
const hash16 = (s: string) => createHash('sha1').update(s).digest('hex').slice(0, 16)

/** Checks a dataset's `group` section. */
export function checkGroup(group: unknown, where: string): GroupConfig {
  const g = group as GroupConfig
  if (!g || typeof g !== 'object' || Array.isArray(g)) throw new DataError(`${where}.group: expected {by?, positive?, negatives?, order?}, got ${JSON.stringify(group)}`)
  const p = g.positive as Record<string, unknown> | undefined
  if (p !== undefined && !(typeof p.min === 'number' || (Array.isArray(p.values) && p.values.length > 0 && p.values.every((v) => typeof v === 'number'))))
    throw new DataError(`${where}.group.positive: expected {min: number} or {values: [numbers]}, got ${JSON.stringify(p)}`)
  return g
}

/** Groups the pair items of one dataset (`task` ir or eval); `tempDir` holds spill files, removed at the end. */
export class Grouping {
  readonly summary: GroupSummary = {pairs: 0, queries: 0, queriesWithoutPositive: 0, positives: 0, negatives: 0}
  private readonly isPositive: (score: number) => boolean
  private readonly kind: PreparedKind

  constructor(
    private readonly config: GroupConfig,
    private readonly task: 'ir' | 'eval',
    private readonly tempDir: string,
    /** Input bytes, to size the spill partitions. */
    private readonly inputFiles: string[],
  ) {
    const p = config.positive ?? {min: 1}
    this.isPositive = 'values' in p ? (s) => p.values.includes(s) : (s) => s >= p.min
    this.kind = task === 'ir' ? 'ir-example' : 'qrels'
  }

  async *run(items: AsyncIterable<ReadItem>): AsyncGenerator<ReadItem> {
    const pairs = this.pairs(items)
    try {
      if (this.task === 'eval') yield* this.evalSet(pairs)
      else if (this.config.order === 'consecutive') yield* this.consecutive(pairs)
      else yield* this.spilled(pairs)
    } finally {
      rmSync(this.tempDir, {recursive: true, force: true})
    }
    if (this.summary.queriesWithoutPositive)
      yield {
        type: 'warning',
        split: null,
        message: `${this.summary.queriesWithoutPositive} of ${this.summary.queries} queries have no positive candidate (group.positive ${JSON.stringify(this.config.positive ?? {min: 1})}): left out of ${this.task === 'ir' ? 'the training examples' : 'queries and qrels'}`,
      }
  }

  /** Valid pairs, with rejects (re-kinded to this output) and other items passed through as Pair | ReadItem. */
  private async *pairs(items: AsyncIterable<ReadItem>): AsyncGenerator<Pair | ReadItem> {
    for await (const item of items) {
      if (item.type === 'reject') {
        yield {...item, kind: this.kind}
        continue
      }
      if (item.type !== 'row') {
        yield item
        continue
      }
      const d = item.row as unknown as Record<string, unknown>
      const query = toText(d.text1, 'text1 (query)')
      const text = query.ok ? toText(d.text2, 'text2 (candidate)') : query
      const score = text.ok ? toNumber(d.score, 'score (label)') : text
      const split = item.split ?? ''
      const by = this.config.by === undefined ? query : item.source?.(this.config.by)
      if (!score.ok || by === undefined || by === null || by === '') {
        const reason = !score.ok ? score.reason : `group.by: missing field ${JSON.stringify(this.config.by)}`
        yield {type: 'reject', kind: this.kind, split, at: item.at, reason, raw: item.raw}
        continue
      }
      const key = this.config.by === undefined ? (query as {value: string}).value : String(by)
      this.summary.pairs++
      yield {key, split, query: (query as {value: string}).value, text: (text as {value: string}).value, score: (score as {value: number}).value, at: item.at}
    }
  }

  /** IR examples from one query's pairs (in file order). */
  private *example(group: Pair[], id: string): Generator<ReadItem> {
    this.summary.queries++
    const first = group[0]
    const positives = new Set<string>()
    for (const p of group) if (this.isPositive(p.score)) positives.add(p.text)
    if (positives.size === 0) {
      this.summary.queriesWithoutPositive++
      for (const p of group) yield {type: 'unused', split: p.split, at: p.at, reason: 'query has no positive candidate'}
      return
    }
    // Exactly one row stands behind each text of the example: the first positive row of a positive
    // text, the first row of a negative one; every other row is unused with the reason.
    const negatives = new Set<string>()
    const used = new Set<string>()
    for (const p of group) {
      const positive = this.isPositive(p.score)
      let reason: string | undefined
      if (positives.has(p.text)) {
        if (positive && !used.has(p.text)) used.add(p.text)
        else reason = positive ? 'candidate given twice for the query' : 'candidate is also a positive of the query'
      } else if (this.config.negatives === false) reason = 'not a positive (group.negatives: false)'
      else if (negatives.has(p.text)) reason = 'candidate given twice for the query'
      else negatives.add(p.text)
      if (reason) yield {type: 'unused', split: p.split, at: p.at, reason}
    }
    this.summary.positives += positives.size
    this.summary.negatives += negatives.size
    yield {type: 'row', kind: 'ir-example', split: first.split, at: first.at, row: {id, query: first.query, positives: [...positives], negatives: [...negatives]}}
  }

  private async *consecutive(pairs: AsyncIterable<Pair | ReadItem>): AsyncGenerator<ReadItem> {
    let group: Pair[] = []
    const done = new Set<string>()
    let reappeared = 0
    let example: SourceLocation | undefined
    const flush = function* (this: Grouping): Generator<ReadItem> {
      if (!group.length) return
      const h = hash16(`${group[0].split}\0${group[0].key}`)
      let id = `q${h}`
      if (done.has(h)) {
        reappeared++
        example ??= group[0].at
        id += `.${group[0].at.line}`
      }
      done.add(h)
      yield* this.example(group, id)
      group = []
    }.bind(this)
    for await (const p of pairs) {
      if (!('key' in p)) {
        yield p
        continue
      }
      if (group.length && (group[0].key !== p.key || group[0].split !== p.split)) yield* flush()
      group.push(p)
    }
    yield* flush()
    if (reappeared)
      yield {
        type: 'warning',
        split: null,
        at: example,
        message: `${reappeared} queries reappear after their rows ended (group.order: consecutive), first at ${example!.file}:${example!.line}: each run of rows became its own example; use group.order: any to gather a query's rows wherever they are`,
      }
  }

  private async *spilled(pairs: AsyncIterable<Pair | ReadItem>): AsyncGenerator<ReadItem> {
    const bytes = this.inputFiles.reduce((sum, f) => sum + sizeOf(f), 0)
    const n = Math.min(256, Math.max(1, Math.ceil(bytes / PARTITION_BYTES)))
    mkdirSync(this.tempDir, {recursive: true})
    const files = Array.from({length: n}, (_, i) => join(this.tempDir, `part-${i}.jsonl`))
    const fds = files.map((f) => openSync(f, 'w'))
    const buffers: string[][] = files.map(() => [])
    const sizes = new Array<number>(n).fill(0)
    const write = (i: number) => {
      writeSync(fds[i], buffers[i].join(''))
      buffers[i] = []
      sizes[i] = 0
    }
    try {
      for await (const p of pairs) {
        if (!('key' in p)) {
          yield p
          continue
        }
        const i = parseInt(hash16(`${p.split}\0${p.key}`).slice(0, 8), 16) % n
        const line = JSON.stringify([p.key, p.split, p.query, p.text, p.score, p.at.file, p.at.line]) + '\n'
        buffers[i].push(line)
        if ((sizes[i] += line.length) > 1 << 16) write(i)
      }
      for (let i = 0; i < n; i++) write(i)
    } finally {
      for (const fd of fds) closeSync(fd)
    }
    for (const file of files) {
      const groups = new Map<string, Pair[]>()
      for await (const {text} of readLines(file)) {
        if (!text) continue
        const [key, split, query, candidate, score, f, line] = JSON.parse(text) as [string, string, string, string, number, string, number]
        const k = `${split}\0${key}`
        let g = groups.get(k)
        if (!g) groups.set(k, (g = []))
        g.push({key, split, query, text: candidate, score, at: {file: f, line}})
      }
      for (const [k, g] of groups) yield* this.example(g, `q${hash16(k)}`)
      groups.clear()
    }
  }

  private async *evalSet(pairs: AsyncIterable<Pair | ReadItem>): AsyncGenerator<ReadItem> {
    const docs = new Set<string>()
    const queries = new Set<string>()
    const seenQueries = new Set<string>()
    const judged = new Set<string>()
    for await (const p of pairs) {
      if (!('key' in p)) {
        yield p
        continue
      }
      const docId = `d${hash16(p.text)}`
      if (!docs.has(docId)) {
        docs.add(docId)
        yield {type: 'row', kind: 'corpus', split: null, at: p.at, row: {id: docId, text: p.text}}
      }
      const queryId = `q${hash16(p.key)}`
      seenQueries.add(queryId)
      if (!this.isPositive(p.score)) {
        this.summary.negatives++
        yield {type: 'unused', split: p.split, at: p.at, reason: 'not a positive: its passage is a corpus document, not in qrels'}
        continue
      }
      if (!queries.has(queryId)) {
        queries.add(queryId)
        yield {type: 'row', kind: 'queries', split: null, at: p.at, row: {id: queryId, text: p.query}}
      }
      const pair = `${p.split}\0${queryId}\0${docId}`
      if (judged.has(pair)) {
        yield {type: 'unused', split: p.split, at: p.at, reason: 'positive given twice for the query'}
        continue
      }
      judged.add(pair)
      this.summary.positives++
      const grade = Number.isInteger(p.score) && p.score >= 1 ? p.score : 1
      yield {type: 'row', kind: 'qrels', split: p.split, at: p.at, row: {query_id: queryId, corpus_id: docId, score: grade}}
    }
    this.summary.queries = seenQueries.size
    this.summary.queriesWithoutPositive = seenQueries.size - queries.size
  }
}
