/**
 * Hard-negative mining for IR training files: for every IR example, search the corpus with the
 * example's query (with its instruction prefix), skip the `skipTop` best hits (likely unlabelled
 * positives), drop hits that are known positives, and keep the next `topK` as negatives. With
 * `maxScoreRatio` R, a candidate scoring above R × (the example's lowest positive score) is also
 * dropped as a probable false negative (positive-aware filtering, as in NV-Retriever).
 *
 * Output: the IR examples with the mined negatives appended to their existing ones (duplicates
 * skipped) and `negative_scores` / `positive_scores` filled with cosine similarities under the
 * mining model. Written atomically with ArrowRecordWriter; schema metadata carries the input's
 * metadata plus `codiemb.mined` (model fingerprint and parameters).
 *
 * Memory: the corpus is streamed from its Arrow file (corpus-source.ts): its ids are held, its
 * passages are read a slice at a time to encode them and once more to find the documents whose text
 * is a known positive or negative (only those texts are kept), and the mined negatives' texts are
 * read by row at the end. The input examples, their queries and positives are held in memory.
 */
import {readAllRecords, readArrowMeta, ArrowRecordWriter, type IrExampleRecord} from '../io/arrow-records.js'
import type {EncodeProgressEvent, MineProgressEvent} from '../core/events.js'
import {EmbeddingStore} from './embedding-cache.js'
import {encodeTexts, passagePrompt, queryPrompt, type EvalEncoder} from './evaluate.js'
import {exactSearchTable} from './search.js'
import type {ShardGroup} from '../tensor/shards.js'
import {ArrowCorpus, MemoryCorpus, minePassage, type Corpus} from './corpus-source.js'
import {SCAN_SLICE} from './text-source.js'

export interface MineOptions {
  input: string
  corpus: string
  out: string
  topK: number
  skipTop?: number
  maxScoreRatio?: number
  batchSize?: number
  maxLength?: number
  cacheDir?: string
  /** Put queries in their example's instruction template (default true). */
  instructions?: boolean
  /** Instruction template, syntax in src/core/prompts.ts (default the paper's). */
  instructionTemplate?: string
  /** Read the corpus whole into memory rather than streaming it (the equivalence test's reference path). */
  inMemory?: boolean
  /** Progress: encoding the corpus, the queries and the known positives, then the search. */
  onEvent?: (event: MineProgressEvent) => void
  /**
   * The ranks of a job (tensor/shards.ts): the texts are encoded in parallel (EmbeddingStore), every
   * rank searches the same vectors; rank 0 alone uses the cache directory and writes `out`.
   */
  group?: ShardGroup
}

export interface MineResult {
  out: string
  examples: number
  corpus: number
  minedNegatives: number
  /** Examples that got fewer than topK new negatives (exclusions, ratio filter or a small corpus). */
  shortExamples: number
  droppedByRatio: number
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i]
    na += a[i] * a[i]
    nb += b[i] * b[i]
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0
}

export async function mineHardNegatives(encoder: EvalEncoder, options: MineOptions): Promise<MineResult> {
  const skipTop = options.skipTop ?? 0
  if (!Number.isInteger(options.topK) || options.topK < 1) throw new Error(`--top-k must be an integer >= 1, got ${options.topK}`)
  if (!Number.isInteger(skipTop) || skipTop < 0) throw new Error(`--skip-top must be an integer >= 0, got ${skipTop}`)
  const emit = options.onEvent ?? (() => {})
  const encoding = (stage: MineProgressEvent['stage']) => (e: EncodeProgressEvent) => emit({type: 'mine-progress', stage, done: e.done, total: e.total})
  const store = new EmbeddingStore(options.cacheDir, {group: options.group})
  const examples = await readAllRecords(options.input, 'ir-example')
  const inputMeta = await readArrowMeta(options.input)
  const corpus = await openCorpus(options.corpus, options.inMemory ?? false)
  try {
    return await mineWith(encoder, options, {examples, inputMeta, corpus, store, skipTop, emit, encoding})
  } finally {
    await corpus.close()
  }
}

/** The corpus streamed from its Arrow file, or read whole when asked or when it does not stream (an Arrow stream without a footer). */
async function openCorpus(file: string, inMemory: boolean): Promise<Corpus> {
  const streamed = inMemory ? undefined : await ArrowCorpus.open(file, minePassage)
  return streamed ?? new MemoryCorpus(await readAllRecords(file, 'corpus'), minePassage)
}

interface MineInputs {
  examples: IrExampleRecord[]
  inputMeta: Awaited<ReturnType<typeof readArrowMeta>>
  corpus: Corpus
  store: EmbeddingStore
  skipTop: number
  emit: (event: MineProgressEvent) => void
  encoding: (stage: MineProgressEvent['stage']) => (e: EncodeProgressEvent) => void
}

async function mineWith(encoder: EvalEncoder, options: MineOptions, {examples, inputMeta, corpus: corpusSource, store, skipTop, emit, encoding}: MineInputs): Promise<MineResult> {
  // in a job (options.group) every rank encodes and searches; rank 0 alone writes `out`
  const writes = !options.group || options.group.rank === 0
  if (!corpusSource.count) throw new Error(`${options.corpus}: the corpus is empty`)
  const corpusIds = await corpusSource.ids()
  // a positive given as text excludes every corpus document with that text (with or without title):
  // one pass over the corpus keeps the ids of the documents whose text is one of the examples' texts
  const given = new Set(examples.flatMap((e) => [...e.positives, ...e.negatives]))
  const idsByText = new Map<string, string[]>()
  for (let s = 0; s < corpusSource.count; s += SCAN_SLICE) {
    const {texts, passages} = await corpusSource.columns(s, s + SCAN_SLICE)
    texts.forEach((text, k) => {
      for (const t of new Set([text, passages[k]!])) {
        if (!given.has(t)) continue
        const list = idsByText.get(t)
        if (list) list.push(corpusIds[s + k]!)
        else idsByText.set(t, [corpusIds[s + k]!])
      }
    })
  }
  const encodeOpts = {batchSize: options.batchSize, maxLength: options.maxLength, store}
  const corpus = await encodeTexts(encoder, corpusSource, {task: `mine:${options.corpus}`, split: 'corpus', role: 'corpus', prompt: passagePrompt(encoder)}, {
    ...encodeOpts,
    onEvent: encoding('encode corpus'),
  })
  // queries grouped by prompt (examples may carry different instructions)
  const prompts = examples.map((e) => queryPrompt(encoder, e.instruction || undefined, options, 'retrieval'))
  const groups = new Map<string, number[]>()
  prompts.forEach((p, i) => {
    const key = JSON.stringify([p.prefix, p.suffix])
    const group = groups.get(key)
    if (group) group.push(i)
    else groups.set(key, [i])
  })
  const queryVectors: Float32Array[] = new Array(examples.length)
  for (const idx of groups.values()) {
    const prompt = prompts[idx[0]]
    const m = await encodeTexts(encoder, idx.map((i) => examples[i].query), {task: `mine:${options.input}`, split: 'queries', role: 'queries', prompt}, {
      ...encodeOpts,
      onEvent: encoding('encode queries'),
    })
    const all = await m.readAll()
    idx.forEach((i, j) => (queryVectors[i] = all.subarray(j * m.dim, (j + 1) * m.dim)))
  }
  // positives and existing negatives, for their scores
  const sideTexts = [...new Set(examples.flatMap((e) => [...e.positives, ...(e.negative_scores ? [] : e.negatives)]))]
  const sideIndex = new Map(sideTexts.map((t, i) => [t, i]))
  const side = sideTexts.length
    ? await encodeTexts(encoder, sideTexts, {task: `mine:${options.input}`, split: 'passages', role: 'passages', prompt: passagePrompt(encoder)}, {...encodeOpts, onEvent: encoding('encode positives')})
    : undefined
  const sideAll = side ? await side.readAll() : new Float32Array()
  const sideVec = (t: string) => sideAll.subarray(sideIndex.get(t)! * side!.dim, (sideIndex.get(t)! + 1) * side!.dim)

  const dim = corpus.dim
  const queries = new Float32Array(examples.length * dim)
  queryVectors.forEach((v, i) => queries.set(v, i * dim))
  const exclude = examples.map((e) => new Set([...e.positives, ...e.negatives].flatMap((t) => idsByText.get(t) ?? [])))
  // hits as corpus rows (the chunks stream the corpus in order)
  const hits = await exactSearchTable(queries, examples.map((e) => e.id), dim, corpus.chunks(corpusIds), {
    k: Math.min(corpus.count, skipTop + options.topK),
    exclude,
    onEvent: (e) => emit({type: 'mine-progress', stage: 'search', done: e.done, total: corpus.count}),
  })
  const hitsOf = (i: number) => ({from: i * hits.k, to: i * hits.k + hits.count[i]!})
  // the texts of the candidates the ratio filter keeps (at most skipTop + topK per example), read by row
  const ratioDrops = (score: number, minPositive: number) => options.maxScoreRatio !== undefined && Number.isFinite(minPositive) && score > options.maxScoreRatio * minPositive
  const minPositives = examples.map((e, i) => {
    const scores = e.positive_scores ?? e.positives.map((p) => cosine(queryVectors[i]!, sideVec(p)))
    return {scores, min: scores.length ? Math.min(...scores) : Infinity}
  })
  const wanted = new Set<number>()
  examples.forEach((_, i) => {
    const {from, to} = hitsOf(i)
    for (let j = from + skipTop; j < to; j++) if (!ratioDrops(hits.scores[j]!, minPositives[i]!.min)) wanted.add(hits.docs[j]!)
  })
  const rows = [...wanted]
  const candidateTexts = await corpusSource.at(rows)
  const textOf = new Map(rows.map((r, k) => [r, candidateTexts[k]!]))

  const writer = !writes ? undefined : new ArrowRecordWriter(options.out, 'ir-example', {
    metadata: {
      ...Object.fromEntries(Object.entries(inputMeta.metadata).filter(([k]) => k !== 'codiemb.kind' && k !== 'codiemb.version')),
      'codiemb.mined': JSON.stringify({model: encoder.fingerprint(), corpus: options.corpus, topK: options.topK, skipTop, maxScoreRatio: options.maxScoreRatio ?? null}),
    },
  })
  let minedNegatives = 0
  let shortExamples = 0
  let droppedByRatio = 0
  try {
    examples.forEach((e, i) => {
      const q = queryVectors[i]
      const {scores: positiveScores, min: minPositive} = minPositives[i]!
      const negatives = [...e.negatives]
      const negativeScores = e.negative_scores ? [...e.negative_scores] : e.negatives.map((n) => cosine(q, sideVec(n)))
      const seen = new Set(negatives)
      let added = 0
      const {from, to} = hitsOf(i)
      for (let j = from + skipTop; j < to && added < options.topK; j++) {
        const score = hits.scores[j]!
        if (ratioDrops(score, minPositive)) {
          droppedByRatio++
          continue
        }
        const text = textOf.get(hits.docs[j]!)!
        if (seen.has(text)) continue
        seen.add(text)
        negatives.push(text)
        negativeScores.push(score)
        added++
      }
      if (added < options.topK) shortExamples++
      minedNegatives += added
      writer?.write({...e, negatives, negative_scores: negativeScores, positive_scores: positiveScores})
    })
    await writer?.finish()
  } catch (error) {
    writer?.abort()
    throw error
  }
  return {out: options.out, examples: examples.length, corpus: corpus.count, minedNegatives, shortExamples, droppedByRatio}
}
