/**
 * The checks `prepare` makes across the rows of one dataset, beyond each row on its own
 * (validate.ts):
 *
 * - corpus documents and queries must have unique ids (a duplicate is a reject: qrels could not
 *   tell the two apart);
 * - qrels must point to a known query and a known document (a dangling one is a reject);
 * - a (query, document) pair judged twice in a split with different grades is kept but warned
 *   about: the grades contradict each other, and evaluation would use the last one;
 * - an output file that receives no row is warned about (an empty split is still written, so
 *   that a split is never silently replaced by another, but a 0-row dataset is rarely intended).
 */
import type {AnyRecord} from '../io/arrow-records.js'
import type {PreparedKind, SourceLocation} from './types.js'

type Converted = {ok: true; value: AnyRecord} | {ok: false; reason: string}

/** The first contradicting judgement of a split, and how many rows contradict the row before them. */
interface Conflict {
  count: number
  example: {query: string; document: string; first: {score: number; at: SourceLocation}; second: {score: number; at: SourceLocation}}
}

export class DatasetChecks {
  private readonly corpusIds?: Set<string>
  private readonly queryIds?: Set<string>
  /** split -> "query\0document" -> the latest grade and where it was given. */
  private readonly grades = new Map<string, Map<string, {score: number; at: SourceLocation}>>()
  private readonly conflicts = new Map<string, Conflict>()

  constructor(
    readonly dataset: string,
    kinds: readonly PreparedKind[],
    /** How a source file is named in messages (relative to the data root when inside it). */
    private readonly rel: (file: string) => string = (f) => f,
  ) {
    if (kinds.includes('corpus')) this.corpusIds = new Set()
    if (kinds.includes('queries')) this.queryIds = new Set()
  }

  /** `converted` after the dataset-level checks of its kind: a duplicate id or a dangling qrel becomes a reject. */
  check(kind: PreparedKind, split: string | null, at: SourceLocation, converted: Converted): Converted {
    if (!converted.ok) return converted
    if (kind === 'corpus' && this.corpusIds) return this.firstOfId(converted, this.corpusIds, 'corpus')
    if (kind === 'queries' && this.queryIds) return this.firstOfId(converted, this.queryIds, 'query')
    if (kind !== 'qrels') return converted
    const q = converted.value as {query_id: string; corpus_id: string; score: number}
    if (this.queryIds && !this.queryIds.has(q.query_id)) return {ok: false, reason: `query_id: ${JSON.stringify(q.query_id)} is not a known query (dangling qrels)`}
    if (this.corpusIds && !this.corpusIds.has(q.corpus_id)) return {ok: false, reason: `corpus_id: ${JSON.stringify(q.corpus_id)} is not a known document (dangling qrels)`}
    this.noteGrade(split ?? '', q, at)
    return converted
  }

  /**
   * The warnings about the dataset once it is read: contradicting qrels, and every output file that
   * received no row (`files`: manifest path and rows).
   */
  warnings(files: readonly {path: string; rows: number}[], counts: {rejected: number; unused: number}): string[] {
    const out: string[] = []
    for (const [split, c] of this.conflicts) {
      const e = c.example
      out.push(
        `dataset ${this.dataset}${split ? `, split ${split}` : ''}: ${c.count} qrels row${c.count === 1 ? ' gives' : 's give'} a (query, document) pair another grade than an earlier row, ` +
          `e.g. query ${JSON.stringify(e.query)}, document ${JSON.stringify(e.document)}: ${e.first.score} at ${this.rel(e.first.at.file)}:${e.first.at.line}, ` +
          `${e.second.score} at ${this.rel(e.second.at.file)}:${e.second.at.line} (evaluation uses the last grade given)`,
      )
    }
    const empty = files.filter((f) => f.rows === 0)
    if (empty.length) {
      const why = counts.rejected || counts.unused ? ` (${counts.rejected} rows rejected, ${counts.unused} unused)` : ' (the input holds no row for it)'
      out.push(`dataset ${this.dataset}: ${empty.map((f) => f.path).join(', ')} ${empty.length === 1 ? 'has' : 'have'} 0 rows${why}`)
    }
    return out
  }

  /** A document or query whose id was already seen becomes a reject; otherwise its id is noted. */
  private firstOfId(converted: Converted & {ok: true}, seen: Set<string>, what: 'corpus' | 'query'): Converted {
    const id = (converted.value as {id: string}).id
    if (seen.has(id)) return {ok: false, reason: `id: duplicate ${what} id ${JSON.stringify(id)}`}
    seen.add(id)
    return converted
  }

  private noteGrade(split: string, q: {query_id: string; corpus_id: string; score: number}, at: SourceLocation): void {
    let grades = this.grades.get(split)
    if (!grades) this.grades.set(split, (grades = new Map()))
    const key = `${q.query_id}\u0000${q.corpus_id}`
    // the pair's latest grade: each row is compared with the one before it
    const previous = grades.get(key)
    grades.set(key, {score: q.score, at})
    if (!previous || previous.score === q.score) return
    const c = this.conflicts.get(split)
    if (c) c.count++
    else this.conflicts.set(split, {count: 1, example: {query: q.query_id, document: q.corpus_id, first: previous, second: {score: q.score, at}}})
  }
}
