/**
 * Reads a task's evaluation data for one split (the files task-files.ts finds under --data-dir):
 * STS pairs, or a retrieval corpus, its queries and the split's qrels.
 *
 * Layouts: Arrow files written by `codiemb prepare` (`sts-pair`; `corpus` + `queries` + `qrels`), or
 * a Hugging Face dataset directory as `codiemb data pull` downloads it: parquet (STS:
 * sentence1/sentence2/score; retrieval: corpus and queries with id/text, qrels with qid/pid/score —
 * C-MTEB keeps qrels in the separate `<id>-qrels` dataset), MTEB's BEIR-style `corpus.jsonl` /
 * `queries.jsonl` / `qrels/<split>.tsv`, or `<split>.jsonl(.gz)` STS files.
 *
 * Every failure is a TaskDataError (exit 2) that says what it is: no data for the split, a file that
 * cannot be read (with the reader's error), or a row without a field it needs. Text files are
 * decoded strictly as UTF-8 (src/data/text-decoder.ts). A (query, document) pair graded twice
 * with different grades is kept with its last grade and reported in `warnings`.
 */
import {existsSync, readFileSync} from 'node:fs'
import {basename, isAbsolute, join, relative} from 'node:path'
import {gunzipSync} from 'node:zlib'
import {readArrowMeta, readRecords} from '../io/arrow-records.js'
import {decodeText} from '../data/text-decoder.js'
import type {Qrels} from './metrics.js'
import {ArrowCorpus, evalPassage} from './corpus-source.js'
import {ArrayTextSource, type TextSource} from './text-source.js'
import type {TaskDefinition} from './tasks.js'
import {arrowInfos, candidateDirs, filesForSplit, isArrow, isJsonl, isParquet, listFiles, missing, splitsOf, TaskDataError, unreadable, unreadableFor, type ArrowInfo} from './task-files.js'

export {TaskDataError} from './task-files.js'

export interface StsData {
  text1: string[]
  text2: string[]
  gold: Float64Array
  /** An instruction the prepared file carries (codiemb.instruction), if any. */
  instruction?: string
  sources: string[]
}

export interface RetrievalData {
  corpusIds: string[]
  /**
   * The passages (title and body joined), in corpusIds' order: streamed from a prepared Arrow corpus
   * (corpus-source.ts), read whole into memory from any other layout. Close it when done.
   */
  corpus: TextSource
  queryIds: string[]
  queryTexts: string[]
  qrels: Qrels
  instruction?: string
  sources: string[]
  /** What was read but looks wrong (qrels grading a pair twice differently). */
  warnings: string[]
}

type Row = Record<string, unknown>

/** Rows of a parquet, JSON-lines (optionally gzipped), TSV (with a header) or Arrow file; any failure to read it is a TaskDataError. */
export async function readRows(file: string): Promise<Row[]> {
  try {
    return await readRowsOf(file)
  } catch (error) {
    if (error instanceof TaskDataError) throw error
    throw new TaskDataError(`${file}: cannot be read: ${(error as Error).message}`)
  }
}

async function readRowsOf(file: string): Promise<Row[]> {
  if (isParquet(file)) {
    const {asyncBufferFromFile, parquetReadObjects} = await import('hyparquet')
    try {
      return (await parquetReadObjects({file: await asyncBufferFromFile(file)})) as Row[]
    } catch (error) {
      throw new TaskDataError(`${file}: cannot read parquet: ${(error as Error).message}`)
    }
  }
  if (isArrow(file)) {
    const rows: Row[] = []
    for await (const r of readRecords(file)) rows.push(r as unknown as Row)
    return rows
  }
  if (isJsonl(file)) {
    const raw = readFileSync(file)
    const text = decodeText(file, file.endsWith('.gz') ? gunzipSync(raw) : raw)
    const rows: Row[] = []
    text.split('\n').forEach((line, i) => {
      if (!line.trim()) return
      let value: unknown
      try {
        value = JSON.parse(line)
      } catch (error) {
        throw new TaskDataError(`${file}:${i + 1}: not a JSON object: ${(error as Error).message}`)
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TaskDataError(`${file}:${i + 1}: expected a JSON object, got ${JSON.stringify(value)}`)
      rows.push(value as Row)
    })
    return rows
  }
  if (file.endsWith('.tsv')) {
    const lines = decodeText(file, readFileSync(file)).split('\n').map((l) => l.replace(/\r$/, '')).filter((l) => l.trim())
    if (!lines.length) throw new TaskDataError(`${file}:1: empty file: expected a header line (e.g. query-id, corpus-id, score)`)
    const header = lines[0].split('\t').map((h) => h.trim())
    return lines.slice(1).map((l) => Object.fromEntries(l.split('\t').map((v, i) => [header[i] ?? `f${i}`, v.trim()])))
  }
  throw new TaskDataError(`${file}: unsupported file type (expected .arrow, .parquet, .jsonl[.gz] or .tsv)`)
}

function pick(row: Row, keys: string[], file: string, index: number, what: string): unknown {
  for (const k of keys) if (row[k] !== undefined && row[k] !== null) return row[k]
  throw new TaskDataError(`${file}: row ${index + 1} has no ${what} (looked for field ${keys.map((k) => `"${k}"`).join(' or ')})`)
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : String(v)
}

function num(v: unknown, file: string, index: number, field: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : Number(String(v).trim())
  if (!Number.isFinite(n)) throw new TaskDataError(`${file}: row ${index + 1}: ${field} ${JSON.stringify(v)} is not a number`)
  return n
}

function resolveFile(dataDir: string, p: string): string {
  const abs = isAbsolute(p) ? p : join(dataDir, p)
  if (!existsSync(abs)) throw new TaskDataError(`task file ${abs} does not exist`)
  return abs
}

/** Arrow files by path, for `filesForSplit`'s split labels. */
const splitLabel = (infos: readonly ArrowInfo[]) => {
  const byFile = new Map(infos.map((i) => [i.file, i.split]))
  return (f: string) => byFile.get(f)
}

/** The STS pairs of `task.split`; never another split's. */
/**
 * A gold label read back from a float32 Arrow column (codiemb's sts-pair layout) as its source wrote
 * it: the shortest decimal that rounds to the same float32 (3.5999999046325684 -> 3.6). MTEB reads
 * the labels as float64, and float32 noise in the gold moves Pearson by ~1e-9.
 */
export function float32Label(value: number): number {
  if (Math.fround(value) !== value || !Number.isFinite(value)) return value
  for (let digits = 1; digits <= 9; digits++) {
    const decimal = Number(value.toPrecision(digits))
    if (Math.fround(decimal) === value) return decimal
  }
  return value
}

export async function loadStsData(task: TaskDefinition, dataDir: string): Promise<StsData> {
  const split = task.split
  let files: string[] = []
  const looked: string[] = []
  const others: string[] = []
  if (task.files?.pairs) files = [resolveFile(dataDir, task.files.pairs)]
  else {
    for (const dir of candidateDirs(task, dataDir)) {
      looked.push(dir)
      const all = listFiles(dir)
      if (!all.length) continue
      const infos = await arrowInfos(all)
      const label = splitLabel(infos)
      const pairs = infos.filter((i) => i.kind === 'sts-pair').map((i) => i.file)
      const hf = all.filter((f) => isParquet(f) || isJsonl(f))
      files = filesForSplit(pairs, split, dir, label).slice(0, 1)
      if (!files.length) files = filesForSplit(hf, split, dir)
      const bad = unreadableFor(infos, split, dir, files.length > 0)
      if (bad.length) throw unreadable(task, split, bad)
      if (files.length) break
      others.push(...splitsOf(pairs, dir, label), ...splitsOf(hf, dir))
    }
  }
  if (!files.length) throw missing(task, split, looked, 'STS pairs', [...new Set(others)])
  const text1: string[] = []
  const text2: string[] = []
  const gold: number[] = []
  let instruction: string | undefined
  for (const file of files) {
    const rows = await readRows(file)
    if (isArrow(file)) instruction ??= (await readArrowMeta(file)).instruction || undefined
    rows.forEach((r, i) => {
      text1.push(str(pick(r, ['text1', 'sentence1', 's1', 'query'], file, i, 'first text')))
      text2.push(str(pick(r, ['text2', 'sentence2', 's2', 'title'], file, i, 'second text')))
      const value = num(pick(r, ['raw_score', 'score', 'label'], file, i, 'gold score'), file, i, 'score')
      gold.push(isArrow(file) ? float32Label(value) : value)
    })
  }
  if (!text1.length) throw new TaskDataError(`task ${task.name}, split "${split}": ${files.join(', ')} hold${files.length === 1 ? 's' : ''} no pairs`)
  return {text1, text2, gold: Float64Array.from(gold), instruction, sources: files}
}

interface RetrievalFiles {
  corpus: string[]
  queries: string[]
  qrels: string[]
}

/** The corpus, queries and `task.split`'s qrels; undefined when no directory holds all three for the split. */
async function locateRetrieval(task: TaskDefinition, dataDir: string, looked: string[], others: string[]): Promise<RetrievalFiles | undefined> {
  const split = task.split
  if (task.files?.corpus && task.files.queries && task.files.qrels) {
    return {corpus: [resolveFile(dataDir, task.files.corpus)], queries: [resolveFile(dataDir, task.files.queries)], qrels: [resolveFile(dataDir, task.files.qrels)]}
  }
  const qrelsDirs = task.hf?.qrelsPath ? [join(dataDir, task.hf.qrelsPath), join(dataDir, task.hf.qrelsPath.replace('/', '__')), join(dataDir, basename(task.hf.qrelsPath))] : []
  for (const dir of candidateDirs(task, dataDir)) {
    looked.push(dir)
    const all = listFiles(dir)
    if (!all.length) continue
    const infos = await arrowInfos(all)
    const label = splitLabel(infos)
    const ofKind = (k: string) => infos.filter((i) => i.kind === k).map((i) => i.file)
    // corpus and queries are shared by every split: one file each, or the one named after the split
    const shared = (fs: string[]) => (fs.length <= 1 ? fs : filesForSplit(fs, split, dir, label).slice(0, 1))
    let found: RetrievalFiles | undefined
    const arrowSet = {corpus: shared(ofKind('corpus')), queries: shared(ofKind('queries')), qrels: filesForSplit(ofKind('qrels'), split, dir, label).slice(0, 1)}
    if (arrowSet.corpus.length && arrowSet.queries.length && arrowSet.qrels.length) found = arrowSet
    const data = all.filter((f) => isParquet(f) || isJsonl(f))
    const qrelsFiles = all.filter((f) => /qrels/i.test(relative(dir, f)) && (f.endsWith('.tsv') || isParquet(f) || isJsonl(f)))
    if (!found) {
      const corpus = data.filter((f) => /corpus/i.test(relative(dir, f)))
      const queries = data.filter((f) => /quer/i.test(relative(dir, f)))
      let qrels = filesForSplit(qrelsFiles, split, dir)
      for (const qd of qrels.length ? [] : qrelsDirs) {
        looked.push(qd)
        const inQd = listFiles(qd).filter((f) => isParquet(f) || isJsonl(f) || f.endsWith('.tsv'))
        qrels = filesForSplit(inQd, split, qd)
        if (qrels.length) break
        others.push(...splitsOf(inQd, qd))
      }
      if (corpus.length && queries.length && qrels.length) found = {corpus, queries, qrels}
    }
    const bad = unreadableFor(infos, split, dir, found !== undefined)
    if (bad.length) throw unreadable(task, split, bad)
    if (found) return found
    others.push(...splitsOf(ofKind('qrels'), dir, label), ...splitsOf(qrelsFiles, dir))
  }
  return undefined
}

/** The retrieval data of `task.split`: its qrels, the judged queries, the whole corpus (streamed when it can be: see loadCorpus). */
export async function loadRetrievalData(task: TaskDefinition, dataDir: string): Promise<RetrievalData> {
  const looked: string[] = []
  const others: string[] = []
  const files = await locateRetrieval(task, dataDir, looked, others)
  if (!files) throw missing(task, task.split, looked, 'corpus/queries/qrels', [...new Set(others)])
  const qrels: Qrels = {}
  let conflicts = 0
  let example = ''
  for (const file of files.qrels) {
    ;(await readRows(file)).forEach((r, i) => {
      const q = str(pick(r, ['query_id', 'qid', 'query-id'], file, i, 'query id'))
      const d = str(pick(r, ['corpus_id', 'pid', 'corpus-id', 'doc_id'], file, i, 'document id'))
      const grade = num(pick(r, ['score', 'relevance', 'label'], file, i, 'relevance'), file, i, 'score')
      const judged = (qrels[q] ??= {})
      if (judged[d] !== undefined && judged[d] !== grade && conflicts++ === 0) example = `query ${JSON.stringify(q)}, document ${JSON.stringify(d)}: ${judged[d]}, then ${grade} at ${file} row ${i + 1}`
      judged[d] = grade
    })
  }
  const warnings = conflicts
    ? [`task ${task.name}, split "${task.split}": ${conflicts} qrels row${conflicts === 1 ? ' gives' : 's give'} a (query, document) pair another grade than an earlier row, e.g. ${example}; the last grade counts`]
    : []
  const queryIds: string[] = []
  const queryTexts: string[] = []
  let instruction: string | undefined
  for (const file of files.queries) {
    const rows = await readRows(file)
    if (isArrow(file)) instruction ??= (await readArrowMeta(file)).instruction || undefined
    rows.forEach((r, i) => {
      const id = str(pick(r, ['id', '_id', 'query_id', 'qid'], file, i, 'query id'))
      if (!qrels[id]) return // MTEB evaluates only judged queries
      queryIds.push(id)
      queryTexts.push(str(pick(r, ['text', 'query'], file, i, 'query text')))
    })
  }
  const {corpusIds, corpus} = await loadCorpus(files.corpus)
  const problem = !queryIds.length
    ? `task ${task.name}, split "${task.split}": no query in ${files.queries.join(', ')} has a judgement in ${files.qrels.join(', ')}`
    : !corpusIds.length
      ? `task ${task.name}: the corpus ${files.corpus.join(', ')} is empty`
      : undefined
  if (problem) {
    await corpus.close()
    throw new TaskDataError(problem)
  }
  return {corpusIds, corpus, queryIds, queryTexts, qrels, instruction, sources: [...files.corpus, ...files.queries, ...files.qrels], warnings}
}

/**
 * The corpus: one prepared Arrow corpus file is streamed (only its ids are read now); any other
 * layout (parquet, JSON lines, several files) is read whole, its passages joined the same way.
 */
async function loadCorpus(files: readonly string[]): Promise<{corpusIds: string[]; corpus: TextSource}> {
  if (files.length === 1 && isArrow(files[0]!)) {
    const streamed = await ArrowCorpus.open(files[0]!, evalPassage)
    if (streamed) {
      try {
        return {corpusIds: await streamed.ids(), corpus: streamed}
      } catch (error) {
        await streamed.close()
        throw error
      }
    }
  }
  const corpusIds: string[] = []
  const corpusTexts: string[] = []
  for (const file of files) {
    ;(await readRows(file)).forEach((r, i) => {
      corpusIds.push(str(pick(r, ['id', '_id', 'corpus_id', 'pid'], file, i, 'document id')))
      const title = r.title === undefined || r.title === null ? null : str(r.title)
      corpusTexts.push(evalPassage(title, str(pick(r, ['text', 'passage', 'content'], file, i, 'document text'))))
    })
  }
  return {corpusIds, corpus: new ArrayTextSource(corpusTexts)}
}
