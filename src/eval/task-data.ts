/**
 * Finds and reads a task's evaluation data under --data-dir.
 *
 * Accepted layouts, looked for in `<data-dir>/<name>` for each name in: the task name, its lower-case
 * form, the task's extra local names, the Hugging Face id (`C-MTEB/ATEC`) and its `__` form
 * (`C-MTEB__ATEC`):
 * 1. files written by `codiemb prepare` (Arrow IPC with `codiemb.kind` metadata): `sts-pair` for
 *    STS; `corpus` + `queries` + `qrels` for retrieval. When several files of a kind exist, the one
 *    whose name contains the split wins;
 * 2. a Hugging Face dataset directory as `codiemb data pull` downloads it: parquet files (STS:
 *    sentence1/sentence2/score; retrieval: corpus and queries files with id/text, qrels with
 *    qid/pid/score — C-MTEB keeps qrels in the separate `<id>-qrels` dataset), or MTEB's BEIR-style
 *    `corpus.jsonl` / `queries.jsonl` / `qrels/<split>.tsv`, or `<split>.jsonl(.gz)` STS files.
 * A task whose data is missing fails with the list of places looked at and the command to fetch it.
 */
import {existsSync, readFileSync} from 'node:fs'
import {basename, isAbsolute, join, relative} from 'node:path'
import {gunzipSync} from 'node:zlib'
import {readArrowMeta, readRecords} from '../io/arrow-records.js'
import type {Qrels} from './metrics.js'
import type {TaskDefinition} from './tasks.js'
import {filesBelow} from './files.js'
import {CodiembError} from '../core/errors.js'

export class TaskDataError extends CodiembError {
  override name = 'TaskDataError'
}

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
  corpusTexts: string[]
  queryIds: string[]
  queryTexts: string[]
  qrels: Qrels
  instruction?: string
  sources: string[]
}

type Row = Record<string, unknown>

function candidateDirs(task: TaskDefinition, dataDir: string): string[] {
  const names = [task.name, task.name.toLowerCase(), ...(task.localNames ?? [])]
  if (task.hf) names.push(task.hf.path, task.hf.path.replace('/', '__'), basename(task.hf.path))
  return [...new Set(names.map((n) => (isAbsolute(n) ? n : join(dataDir, n))))]
}

/** The files below a task's data directory, at most four directories down. */
const listFiles = (dir: string) => filesBelow(dir, 4)

const isArrow = (f: string) => f.endsWith('.arrow') || f.endsWith('.feather')
const isParquet = (f: string) => f.endsWith('.parquet')
const isJsonl = (f: string) => /\.(jsonl|json)(\.gz)?$/.test(f)

/** Rows of a parquet, JSON-lines (optionally gzipped) or Arrow file. */
export async function readRows(file: string): Promise<Row[]> {
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
    const text = (file.endsWith('.gz') ? gunzipSync(raw) : raw).toString('utf8')
    const rows: Row[] = []
    text.split('\n').forEach((line, i) => {
      if (!line.trim()) return
      try {
        rows.push(JSON.parse(line) as Row)
      } catch (error) {
        throw new TaskDataError(`${file}:${i + 1}: not a JSON object: ${(error as Error).message}`)
      }
    })
    return rows
  }
  if (file.endsWith('.tsv')) {
    const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim())
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

/** Prefers files whose path mentions the split; falls back to all when none does. */
function bySplit(files: string[], split: string, root: string): string[] {
  const aliases = split === 'validation' ? ['validation', 'valid', 'dev'] : split === 'dev' ? ['dev', 'validation', 'valid'] : [split]
  for (const a of aliases) {
    const re = new RegExp(`(^|[^a-z])${a}([^a-z]|$)`, 'i')
    const hit = files.filter((f) => re.test(relative(root, f)))
    if (hit.length) return hit
  }
  return []
}

async function arrowKinds(files: string[]): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>()
  for (const f of files) {
    try {
      out.set(f, (await readArrowMeta(f)).kind)
    } catch {
      out.set(f, undefined)
    }
  }
  return out
}

function missing(task: TaskDefinition, looked: string[], wanted: string): TaskDataError {
  const pull = task.hf
    ? `codiemb data pull ${task.hf.path} --revision ${task.hf.revision}${task.hf.qrelsPath ? ` && codiemb data pull ${task.hf.qrelsPath} --revision ${task.hf.qrelsRevision}` : ''}`
    : undefined
  return new TaskDataError(
    `task ${task.name}: no ${wanted} found for split "${task.split}". Looked in:\n  ${looked.join('\n  ')}\n` +
      `Expected files prepared by \`codiemb prepare\` (Arrow: ${task.type === 'sts' ? 'sts-pair' : 'corpus, queries, qrels'}) or a Hugging Face dataset directory` +
      (pull ? ` — fetch it with: ${pull}` : '') +
      (task.files ? '' : ` (or point a user-defined task at its files with eval.tasks[].files)`),
  )
}

function resolveFile(dataDir: string, p: string): string {
  const abs = isAbsolute(p) ? p : join(dataDir, p)
  if (!existsSync(abs)) throw new TaskDataError(`task file ${abs} does not exist`)
  return abs
}

export async function loadStsData(task: TaskDefinition, dataDir: string): Promise<StsData> {
  let files: string[] = []
  const looked: string[] = []
  if (task.files?.pairs) files = [resolveFile(dataDir, task.files.pairs)]
  else {
    for (const dir of candidateDirs(task, dataDir)) {
      looked.push(dir)
      const all = listFiles(dir)
      const arrows = all.filter(isArrow)
      const kinds = await arrowKinds(arrows)
      const pairs = arrows.filter((f) => kinds.get(f) === 'sts-pair')
      if (pairs.length) {
        const chosen = bySplit(pairs, task.split, dir)
        files = chosen.length ? chosen.slice(0, 1) : pairs.length === 1 ? pairs : []
        if (!files.length) throw new TaskDataError(`task ${task.name}: ${dir} holds several sts-pair files (${pairs.map((f) => basename(f)).join(', ')}) and none is named after split "${task.split}"`)
        break
      }
      const hfFiles = bySplit(all.filter((f) => isParquet(f) || isJsonl(f)), task.split, dir)
      if (hfFiles.length) {
        files = hfFiles
        break
      }
    }
  }
  if (!files.length) throw missing(task, looked, 'STS pairs')
  const text1: string[] = []
  const text2: string[] = []
  const gold: number[] = []
  let instruction: string | undefined
  for (const file of files) {
    if (isArrow(file)) instruction ??= (await readArrowMeta(file)).instruction || undefined
    const rows = await readRows(file)
    rows.forEach((r, i) => {
      text1.push(str(pick(r, ['text1', 'sentence1', 's1', 'query'], file, i, 'first text')))
      text2.push(str(pick(r, ['text2', 'sentence2', 's2', 'title'], file, i, 'second text')))
      gold.push(num(pick(r, ['raw_score', 'score', 'label'], file, i, 'gold score'), file, i, 'score'))
    })
  }
  if (!text1.length) throw new TaskDataError(`task ${task.name}: ${files.join(', ')} hold no pairs`)
  return {text1, text2, gold: Float64Array.from(gold), instruction, sources: files}
}

interface RetrievalFiles {
  corpus: string[]
  queries: string[]
  qrels: string[]
}

async function locateRetrieval(task: TaskDefinition, dataDir: string, looked: string[]): Promise<RetrievalFiles | undefined> {
  if (task.files?.corpus && task.files.queries && task.files.qrels) {
    return {corpus: [resolveFile(dataDir, task.files.corpus)], queries: [resolveFile(dataDir, task.files.queries)], qrels: [resolveFile(dataDir, task.files.qrels)]}
  }
  const qrelsDirs = task.hf?.qrelsPath ? [join(dataDir, task.hf.qrelsPath), join(dataDir, task.hf.qrelsPath.replace('/', '__')), join(dataDir, basename(task.hf.qrelsPath))] : []
  for (const dir of candidateDirs(task, dataDir)) {
    looked.push(dir)
    const all = listFiles(dir)
    if (!all.length) continue
    const arrows = all.filter(isArrow)
    const kinds = await arrowKinds(arrows)
    const ofKind = (k: string) => arrows.filter((f) => kinds.get(f) === k)
    if (ofKind('corpus').length && ofKind('queries').length && ofKind('qrels').length) {
      const pickOne = (fs: string[]) => (fs.length === 1 ? fs : bySplit(fs, task.split, dir).slice(0, 1))
      const found = {corpus: pickOne(ofKind('corpus')), queries: pickOne(ofKind('queries')), qrels: pickOne(ofKind('qrels'))}
      if (found.corpus.length && found.queries.length && found.qrels.length) return found
    }
    const data = all.filter((f) => isParquet(f) || isJsonl(f))
    const corpus = data.filter((f) => /corpus/i.test(relative(dir, f)))
    const queries = data.filter((f) => /quer/i.test(relative(dir, f)))
    let qrels = bySplit(all.filter((f) => /qrels/i.test(relative(dir, f)) && (f.endsWith('.tsv') || isParquet(f) || isJsonl(f))), task.split, dir)
    if (!qrels.length) {
      for (const qd of qrelsDirs) {
        looked.push(qd)
        qrels = bySplit(listFiles(qd).filter((f) => isParquet(f) || isJsonl(f) || f.endsWith('.tsv')), task.split, qd)
        if (qrels.length) break
      }
    }
    if (corpus.length && queries.length && qrels.length) return {corpus, queries, qrels}
  }
  return undefined
}

export async function loadRetrievalData(task: TaskDefinition, dataDir: string): Promise<RetrievalData> {
  const looked: string[] = []
  const files = await locateRetrieval(task, dataDir, looked)
  if (!files) throw missing(task, looked, 'corpus/queries/qrels')
  const qrels: Qrels = {}
  for (const file of files.qrels) {
    ;(await readRows(file)).forEach((r, i) => {
      const q = str(pick(r, ['query_id', 'qid', 'query-id'], file, i, 'query id'))
      const d = str(pick(r, ['corpus_id', 'pid', 'corpus-id', 'doc_id'], file, i, 'document id'))
      ;(qrels[q] ??= {})[d] = num(pick(r, ['score', 'relevance', 'label'], file, i, 'relevance'), file, i, 'score')
    })
  }
  const queryIds: string[] = []
  const queryTexts: string[] = []
  let instruction: string | undefined
  for (const file of files.queries) {
    if (isArrow(file)) instruction ??= (await readArrowMeta(file)).instruction || undefined
    ;(await readRows(file)).forEach((r, i) => {
      const id = str(pick(r, ['id', '_id', 'query_id', 'qid'], file, i, 'query id'))
      if (!qrels[id]) return // MTEB evaluates only judged queries
      queryIds.push(id)
      queryTexts.push(str(pick(r, ['text', 'query'], file, i, 'query text')))
    })
  }
  const corpusIds: string[] = []
  const corpusTexts: string[] = []
  for (const file of files.corpus) {
    ;(await readRows(file)).forEach((r, i) => {
      corpusIds.push(str(pick(r, ['id', '_id', 'corpus_id', 'pid'], file, i, 'document id')))
      const title = r.title === undefined || r.title === null ? '' : str(r.title).trim()
      const text = str(pick(r, ['text', 'passage', 'content'], file, i, 'document text'))
      // sentence-transformers / MTEB: title and body joined by a space
      corpusTexts.push(title ? `${title} ${text}`.trim() : text.trim())
    })
  }
  if (!queryIds.length) throw new TaskDataError(`task ${task.name}: no query in ${files.queries.join(', ')} has a judgement in ${files.qrels.join(', ')}`)
  if (!corpusIds.length) throw new TaskDataError(`task ${task.name}: the corpus ${files.corpus.join(', ')} is empty`)
  return {corpusIds, corpusTexts, queryIds, queryTexts, qrels, instruction, sources: [...files.corpus, ...files.queries, ...files.qrels]}
}

