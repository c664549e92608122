/**
 * `beir` reader: retrieval datasets in the BEIR / MTEB layout —
 *
 *     <path>/corpus.jsonl       {"_id", "title", "text"} per line
 *     <path>/queries.jsonl      {"_id", "text"} per line
 *     <path>/qrels/<split>.tsv  header `query-id<TAB>corpus-id<TAB>score`, one judgement per line
 *
 * — and as the Hugging Face hub publishes them (`codiemb data pull`): `corpus`/`queries` as
 * `<name>.parquet` or `<name>-*.parquet` shards (also under `data/`), with `id` or `_id`; qrels as
 * `<split>-*.parquet` rows `{qid, pid, score}` (C-MTEB keeps them in a separate `<name>-qrels`
 * repository: point the split at it, `splits: {dev: C-MTEB/T2Retrieval-qrels}`) or
 * `{query-id, corpus-id, score}`. TREC-style 4-column qrels (`qid iter docid rel`) are read too.
 *
 * Task `eval`: writes the corpus and queries once (shared by all splits) and one qrels file per split;
 * `prepare` then rejects duplicate document/query ids and qrels that point to unknown ones.
 * Task `ir`: builds training examples from the qrels: one IR example per judged query, its positives
 * the texts ("title text") of documents judged >= `minScore`, no negatives (samplers add in-batch
 * or mined ones later). Only the documents and queries the qrels name are held in memory.
 *
 * Options: `corpus`, `queries` (a file or directory under `path`, default: found as above), `qrels`
 * (directory under `path`, default `qrels`), `minScore` (default 1), `encoding` (of the JSON-lines
 * and TSV files; default utf-8). A split given a path (file or
 * directory) reads its qrels from there.
 */
import {existsSync, readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {excerpt, readJsonLines, readLineBatches, requireDir, type JsonItem} from '../text-input.js'
import {DataError, type PreparedKind, type ReadItem, type Reader, type ReadRequest, type SourceLocation, type SplitSource, type Task} from '../types.js'
import {encodingOf, isObject, show} from './common.js'
import {openParquetFile} from './tabular.js'

export {beirOptions as optionsSchema} from './options.js'

interface BeirFiles {
  corpus: string[]
  queries: string[]
  qrels: {split: SplitSource; files: string[]}[]
}

const TABLE_EXTENSIONS = ['.jsonl', '.tsv', '.parquet']

/**
 * The files holding `stem` (corpus, queries, or a split's qrels) under `base`: `<stem>.jsonl|.tsv|.parquet`,
 * else the shards `<stem>-*.parquet` (the hub's layout), also under `<base>/data`.
 */
function findTable(base: string, stem: string): string[] {
  for (const dir of [base, join(base, 'data')]) {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) continue
    for (const ext of TABLE_EXTENSIONS) if (existsSync(join(dir, stem + ext))) return [join(dir, stem + ext)]
    const shards = readdirSync(dir)
      .filter((f) => f.startsWith(`${stem}-`) && f.endsWith('.parquet'))
      .sort()
    if (shards.length) return shards.map((f) => join(dir, f))
  }
  return []
}

/** An explicit option path: a file, or a directory whose table files are read in name order. */
function explicitTable(path: string, what: string): string[] {
  if (!existsSync(path)) throw new DataError(`${what} not found: ${path}`)
  if (statSync(path).isFile()) return [path]
  const files = readdirSync(path)
    .filter((f) => TABLE_EXTENSIONS.some((e) => f.endsWith(e)))
    .sort()
  if (!files.length) throw new DataError(`${what}: no .jsonl, .tsv or .parquet files in ${path}`)
  return files.map((f) => join(path, f))
}

function files(request: ReadRequest): BeirFiles {
  const o = request.options as {corpus?: string; queries?: string; qrels?: string}
  encodingOf(request)
  if (!request.path) throw new DataError(`dataset ${request.dataset}: the beir reader needs path: <directory with corpus.jsonl, queries.jsonl, qrels/>`)
  requireDir(request.path, `dataset ${request.dataset}: BEIR directory`)
  const table = (option: string | undefined, stem: string, what: string) => {
    if (option) return explicitTable(join(request.path!, option), `dataset ${request.dataset}: ${what}`)
    const found = findTable(request.path!, stem)
    if (!found.length) throw new DataError(`dataset ${request.dataset}: ${what} not found: ${join(request.path!, `${stem}.jsonl`)} (nor ${stem}.parquet or ${stem}-*.parquet shards)`)
    return found
  }
  const corpus = table(o.corpus, 'corpus', 'corpus')
  const queries = table(o.queries, 'queries', 'queries')
  const qrels = request.splits.map((split) => {
    const what = `dataset ${request.dataset}, split "${split.name}": qrels`
    if (split.path) {
      if (!existsSync(split.path)) throw new DataError(`${what} not found: ${split.path}`)
      return {split, files: statSync(split.path).isFile() ? [split.path] : findTable(split.path, split.name)}
    }
    const dir = join(request.path!, o.qrels ?? 'qrels')
    const found = findTable(dir, split.name)
    // A hub qrels repository keeps them as data/<split>-*.parquet at its top level.
    const fallback = found.length ? found : findTable(request.path!, split.name)
    if (!fallback.length) throw new DataError(`${what} not found: ${join(dir, `${split.name}.tsv`)} (nor ${split.name}-*.parquet shards)`)
    return {split, files: fallback}
  })
  for (const q of qrels) if (!q.files.length) throw new DataError(`dataset ${request.dataset}, split "${q.split.name}": qrels not found: ${q.split.path}`)
  return {corpus, queries, qrels}
}

/** JSON objects from JSON lines (in `encoding`) or Parquet rows (row number as the line). */
async function* tableRows(file: string, encoding: string): AsyncGenerator<JsonItem> {
  if (!file.endsWith('.parquet')) {
    yield* readJsonLines(file, encoding)
    return
  }
  const {parquetReadObjects} = await import('hyparquet')
  const {buffer, metadata} = await openParquetFile(file)
  let rowStart = 0
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows)
    const rows = await parquetReadObjects({file: buffer, metadata, rowStart, rowEnd})
    for (let i = 0; i < rows.length; i++) {
      const row: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(rows[i])) row[k] = typeof v === 'bigint' ? Number(v) : v
      yield {at: {file, line: rowStart + i + 1}, value: row}
    }
    rowStart = rowEnd
  }
}

/** A document or query id: BEIR's `_id`, the hub's `id`. */
const idOf = (o: Record<string, unknown>) => o._id ?? o.id

type QrelLine = {at: SourceLocation; query_id: string; corpus_id: string; score: string} | {at: SourceLocation; reason: string; raw: string}

async function* qrelLines(file: string, encoding: string): AsyncGenerator<QrelLine> {
  if (file.endsWith('.parquet') || file.endsWith('.jsonl')) {
    // Hub qrels: {qid, pid, score} (C-MTEB) or {query-id, corpus-id, score} (MTEB).
    for await (const item of tableRows(file, encoding)) {
      if (item.error !== undefined) {
        yield {at: item.at, reason: item.error, raw: excerpt(item.raw)}
        continue
      }
      const o = isObject(item.value) ? item.value : {}
      const q = o['query-id'] ?? o.qid ?? o.query_id
      const c = o['corpus-id'] ?? o.pid ?? o.corpus_id
      if (q === undefined || c === undefined || o.score === undefined)
        yield {at: item.at, reason: `expected qrels fields query-id/qid, corpus-id/pid and score, got ${show(item.value)}`, raw: show(item.value)}
      else yield {at: item.at, query_id: String(q).trim(), corpus_id: String(c).trim(), score: String(o.score).trim()}
    }
    return
  }
  let first = true
  for await (const batch of readLineBatches(file, encoding)) {
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
    return [...new Set([...f.corpus, ...f.queries, ...f.qrels.flatMap((q) => q.files)])]
  },
  async *read(request: ReadRequest): AsyncGenerator<ReadItem> {
    const f = files(request)
    const encoding = encodingOf(request)
    if (request.task === 'eval') {
      for (const file of f.corpus)
        for await (const item of tableRows(file, encoding)) {
          if (item.error !== undefined) yield {type: 'reject', kind: 'corpus', split: null, at: item.at, reason: item.error, raw: excerpt(item.raw)}
          else if (!isObject(item.value))
            yield {type: 'reject', kind: 'corpus', split: null, at: item.at, reason: `expected a JSON object {_id, title, text}, got ${show(item.value)}`, raw: excerpt(JSON.stringify(item.value))}
          else yield {type: 'row', kind: 'corpus', split: null, at: item.at, row: {id: idOf(item.value), title: item.value.title, text: item.value.text}}
        }
      for (const file of f.queries)
        for await (const item of tableRows(file, encoding)) {
          if (item.error !== undefined) yield {type: 'reject', kind: 'queries', split: null, at: item.at, reason: item.error, raw: excerpt(item.raw)}
          else if (!isObject(item.value))
            yield {type: 'reject', kind: 'queries', split: null, at: item.at, reason: `expected a JSON object {_id, text}, got ${show(item.value)}`, raw: excerpt(JSON.stringify(item.value))}
          else yield {type: 'row', kind: 'queries', split: null, at: item.at, row: {id: idOf(item.value), text: item.value.text, instruction: item.value.instruction}}
        }
      for (const {split, files: qrelFiles} of f.qrels)
        for (const file of qrelFiles)
          for await (const q of qrelLines(file, encoding)) {
            if ('reason' in q) yield {type: 'reject', kind: 'qrels', split: split.name, at: q.at, reason: q.reason, raw: q.raw}
            else yield {type: 'row', kind: 'qrels', split: split.name, at: q.at, row: {query_id: q.query_id, corpus_id: q.corpus_id, score: q.score}}
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
    for (const {split, files: qrelFiles} of f.qrels) {
      const judged = new Map<string, {corpus_id: string; at: SourceLocation}[]>()
      const firstAt = new Map<string, SourceLocation>()
      for (const file of qrelFiles)
        for await (const q of qrelLines(file, encoding)) {
          if ('reason' in q) {
            yield {type: 'reject', kind, split: split.name, at: q.at, reason: q.reason, raw: q.raw}
            continue
          }
          const score = Number(q.score)
          if (!Number.isFinite(score) || q.score === '') {
            yield {type: 'reject', kind, split: split.name, at: q.at, reason: `score: expected a number, got ${JSON.stringify(q.score)}`, raw: [q.query_id, q.corpus_id, q.score].join('\t')}
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
    for (const file of f.queries)
      for await (const item of tableRows(file, encoding)) {
        if (item.error !== undefined || !isObject(item.value)) continue // not needed for IR; eval reports it
        const id = String(idOf(item.value))
        if (wantQueries.has(id) && typeof item.value.text === 'string') wantQueries.set(id, item.value.text)
      }
    for (const file of f.corpus)
      for await (const item of tableRows(file, encoding)) {
        if (item.error !== undefined || !isObject(item.value)) continue
        const id = String(idOf(item.value))
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
          yield {type: 'reject', kind, split, at, reason: `qrels: query id ${JSON.stringify(qid)} is not in ${f.queries.join(', ')} (dangling qrels)`, raw: `${qid}\t${docs[0].corpus_id}`}
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
          yield {
            type: 'reject',
            kind,
            split,
            at: dangling.at,
            reason: `qrels: corpus id ${JSON.stringify(dangling.corpus_id)} is not in ${f.corpus.join(', ')} (dangling qrels)`,
            raw: `${qid}\t${dangling.corpus_id}`,
          }
          continue
        }
        yield {type: 'row', kind, split, at, row: {id: qid, query, positives, negatives: []}}
      }
    }
  },
}
