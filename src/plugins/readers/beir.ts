/**
 * `beir` reader: the BEIR / MTEB retrieval layout —
 *
 *     <path>/corpus.jsonl     {"_id", "title", "text"} per line
 *     <path>/queries.jsonl    {"_id", "text"} per line
 *     <path>/qrels/<split>.tsv  header `query-id<TAB>corpus-id<TAB>score`, one judgement per line
 *
 * Task `eval`: writes the corpus and queries once (shared by all splits) and one qrels file per split;
 * `prepare` then rejects duplicate document/query ids and qrels that point to unknown ones.
 * Task `ir`: builds training examples from the qrels: one IR example per judged query, its positives
 * the texts ("title text") of documents judged >= `minScore`, no negatives (samplers add in-batch
 * or mined ones later). Only the documents and queries the qrels name are held in memory.
 *
 * Options: `corpus`, `queries` (file names under `path`), `qrels` (directory under `path`; a split
 * may instead name its qrels file: `splits: {test: scifact/qrels/test.tsv}`), `minScore` (default 1).
 * TREC-style 4-column qrels (`qid iter docid rel`) are read too.
 */
import {join} from 'node:path'
import {excerpt, readJsonLines, readLineBatches, requireDir, requireFile} from '../../data/text-input.js'
import {DataError, type PreparedKind, type ReadItem, type Reader, type ReadRequest, type SourceLocation, type SplitSource, type Task} from '../../data/types.js'
import {isObject, show} from './common.js'

export {beirOptions as optionsSchema} from './options.js'

interface BeirFiles {
  corpus: string
  queries: string
  qrels: {split: SplitSource; file: string}[]
}

function files(request: ReadRequest): BeirFiles {
  const o = request.options as {corpus?: string; queries?: string; qrels?: string}
  if (!request.path) throw new DataError(`dataset ${request.dataset}: the beir reader needs path: <directory with corpus.jsonl, queries.jsonl, qrels/>`)
  requireDir(request.path, `dataset ${request.dataset}: BEIR directory`)
  const corpus = join(request.path, o.corpus ?? 'corpus.jsonl')
  const queries = join(request.path, o.queries ?? 'queries.jsonl')
  requireFile(corpus, `dataset ${request.dataset}: corpus`)
  requireFile(queries, `dataset ${request.dataset}: queries`)
  const qrels = request.splits.map((split) => {
    const file = split.path ?? join(request.path!, o.qrels ?? 'qrels', `${split.name}.tsv`)
    requireFile(file, `dataset ${request.dataset}, split "${split.name}": qrels`)
    return {split, file}
  })
  return {corpus, queries, qrels}
}

type QrelLine = {at: SourceLocation; query_id: string; corpus_id: string; score: string} | {at: SourceLocation; reason: string; raw: string}

async function* qrelLines(file: string): AsyncGenerator<QrelLine> {
  let first = true
  for await (const batch of readLineBatches(file)) {
    for (let i = 0; i < batch.lines.length; i++) {
      const text = batch.lines[i]
      const at = {file, line: batch.firstLine + i}
      if (text.trim() === '') continue
      const f = text.split('\t').length >= 3 ? text.split('\t') : text.trim().split(/\s+/)
      if (first) {
        first = false
        // BEIR qrels start with a header (query-id, corpus-id, score); TREC qrels have none.
        if (f.length >= 3 && !/^[-+]?\d+(\.\d+)?$/.test(f[f.length - 1].trim())) continue
      }
      if (f.length === 3) yield {at, query_id: f[0].trim(), corpus_id: f[1].trim(), score: f[2].trim()}
      else if (f.length === 4) yield {at, query_id: f[0].trim(), corpus_id: f[2].trim(), score: f[3].trim()}
      else yield {at, reason: `wrong column count: expected 3 fields (query-id, corpus-id, score), got ${f.length}`, raw: excerpt(text)}
    }
  }
}

export const reader: Reader = {
  tasks: ['eval', 'ir'],
  kindsFor(task: Task): PreparedKind[] {
    return task === 'eval' ? ['corpus', 'queries', 'qrels'] : ['ir-example']
  },
  async sources(request) {
    const f = files(request)
    return [f.corpus, f.queries, ...new Set(f.qrels.map((q) => q.file))]
  },
  async *read(request: ReadRequest): AsyncGenerator<ReadItem> {
    const f = files(request)
    if (request.task === 'eval') {
      for await (const item of readJsonLines(f.corpus)) {
        if (item.error !== undefined) yield {type: 'reject', kind: 'corpus', split: null, at: item.at, reason: item.error, raw: excerpt(item.raw)}
        else if (!isObject(item.value)) yield {type: 'reject', kind: 'corpus', split: null, at: item.at, reason: `expected a JSON object {_id, title, text}, got ${show(item.value)}`}
        else yield {type: 'row', kind: 'corpus', split: null, at: item.at, row: {id: item.value._id, title: item.value.title, text: item.value.text}}
      }
      for await (const item of readJsonLines(f.queries)) {
        if (item.error !== undefined) yield {type: 'reject', kind: 'queries', split: null, at: item.at, reason: item.error, raw: excerpt(item.raw)}
        else if (!isObject(item.value)) yield {type: 'reject', kind: 'queries', split: null, at: item.at, reason: `expected a JSON object {_id, text}, got ${show(item.value)}`}
        else yield {type: 'row', kind: 'queries', split: null, at: item.at, row: {id: item.value._id, text: item.value.text, instruction: item.value.instruction}}
      }
      for (const {split, file} of f.qrels) {
        for await (const q of qrelLines(file)) {
          if ('reason' in q) yield {type: 'reject', kind: 'qrels', split: split.name, at: q.at, reason: q.reason, raw: q.raw}
          else yield {type: 'row', kind: 'qrels', split: split.name, at: q.at, row: {query_id: q.query_id, corpus_id: q.corpus_id, score: q.score}}
        }
      }
      return
    }

    // Task ir: positives from the qrels. Pass 1: which queries and documents are needed.
    const minScore = (request.options.minScore as number | undefined) ?? 1
    const kind = 'ir-example'
    const perSplit: {split: string; judged: Map<string, {corpus_id: string; at: SourceLocation}[]>; firstAt: Map<string, SourceLocation>}[] = []
    const pending: ReadItem[] = []
    const wantDocs = new Map<string, string | null>()
    const wantQueries = new Map<string, string | null>()
    for (const {split, file} of f.qrels) {
      const judged = new Map<string, {corpus_id: string; at: SourceLocation}[]>()
      const firstAt = new Map<string, SourceLocation>()
      for await (const q of qrelLines(file)) {
        if ('reason' in q) {
          yield {type: 'reject', kind, split: split.name, at: q.at, reason: q.reason, raw: q.raw}
          continue
        }
        const score = Number(q.score)
        if (!Number.isFinite(score) || q.score === '') {
          yield {type: 'reject', kind, split: split.name, at: q.at, reason: `score: expected a number, got ${JSON.stringify(q.score)}`}
          continue
        }
        if (!firstAt.has(q.query_id)) firstAt.set(q.query_id, q.at)
        if (!judged.has(q.query_id)) judged.set(q.query_id, [])
        if (score < minScore) {
          pending.push({type: 'unused', split: split.name, at: q.at, reason: `qrels score below minScore ${minScore}`})
          continue
        }
        judged.get(q.query_id)!.push({corpus_id: q.corpus_id, at: q.at})
        wantDocs.set(q.corpus_id, null)
        wantQueries.set(q.query_id, null)
      }
      perSplit.push({split: split.name, judged, firstAt})
    }
    yield* pending
    // Pass 2: the texts of exactly those queries and documents.
    for await (const item of readJsonLines(f.queries)) {
      if (item.error !== undefined || !isObject(item.value)) continue // not needed for IR; eval reports it
      const id = String(item.value._id)
      if (wantQueries.has(id) && typeof item.value.text === 'string') wantQueries.set(id, item.value.text)
    }
    for await (const item of readJsonLines(f.corpus)) {
      if (item.error !== undefined || !isObject(item.value)) continue
      const id = String(item.value._id)
      if (!wantDocs.has(id)) continue
      const title = typeof item.value.title === 'string' ? item.value.title.trim() : ''
      const text = typeof item.value.text === 'string' ? item.value.text.trim() : ''
      wantDocs.set(id, title && text ? `${title} ${text}` : title || text)
    }
    for (const {split, judged, firstAt} of perSplit) {
      for (const [qid, docs] of judged) {
        const at = firstAt.get(qid)!
        if (docs.length === 0) {
          yield {type: 'unused', split, at, reason: `query ${qid} has no qrels with score >= ${minScore}`}
          continue
        }
        const query = wantQueries.get(qid)
        if (query === null || query === undefined) {
          yield {type: 'reject', kind, split, at, reason: `qrels: query id ${JSON.stringify(qid)} is not in ${f.queries} (dangling qrels)`}
          continue
        }
        const positives: string[] = []
        let dangling: {corpus_id: string; at: SourceLocation} | undefined
        for (const d of docs) {
          const text = wantDocs.get(d.corpus_id)
          if (text === null || text === undefined) {
            dangling = d
            break
          }
          positives.push(text)
        }
        if (dangling) {
          yield {type: 'reject', kind, split, at: dangling.at, reason: `qrels: corpus id ${JSON.stringify(dangling.corpus_id)} is not in ${f.corpus} (dangling qrels)`}
          continue
        }
        yield {type: 'row', kind, split, at, row: {id: qid, query, positives, negatives: []}}
      }
    }
  },
}
