/**
 * The evaluation engine: encodes a task's texts with the model (through the embedding cache), then
 * scores STS pairs (Pearson/Spearman of cosine, Euclidean, Manhattan) or runs exact retrieval
 * (running top-k over the corpus) and computes trec_eval-style metrics.
 *
 * Used by `codiemb eval`, by the trainer for in-training evaluation (`evaluateTasks`), and by
 * `codiemb mine` (through `encodeTexts` + `exactSearch`).
 */
import {EmbeddingStore, type EmbeddingMatrix} from './embedding-cache.js'
import {DEFAULT_CUTOFFS, RetrievalMetricsAccumulator, stsScores} from './metrics.js'
import {hasTokenStates, measureGeometry, type Geometry} from './geometry.js'
import {exactSearchTable} from './search.js'
import {loadRetrievalData, loadStsData} from './task-data.js'
import type {Registry} from '../registry/registry.js'
import {scoredSplit, taskSplits, type ConfigTask, type TaskDefinition} from './tasks.js'
import {TaskDataError} from './task-files.js'
import {textSource, type TextSource} from './text-source.js'
import {describePrompt, fillTemplate, INSTRUCTION_TEMPLATE, literalPrompt, type Prompt} from '../core/prompts.js'
import type {EncodeProgressEvent, EvalEvent, EvalProgressEvent} from '../core/events.js'

/** What the engine needs from an encoder (a subset of src/model/encoder.ts's Encoder). */
export interface EvalEncoder {
  /**
   * Embeds texts (inference). `instruction` is what goes around every text: a literal prefix, or a
   * filled template (src/core/prompts.ts); the encoder builds each input with applyPrompt and
   * excludes the prefix's tokens from pooling when it supports that.
   */
  encode(
    texts: string[],
    options?: {instruction?: string | Prompt; batchSize?: number; maxLength?: number; maxTokensPerBatch?: number; onEvent?: (event: EncodeProgressEvent) => void},
  ): Promise<Float32Array[]>
  /** Identifies the weights (changes whenever any weight changes). */
  fingerprint(): string
  maxLength?: number
  /** Named prompts of the checkpoint (sentence-transformers `prompts`): `query`, `passage`/`document` are used when present. */
  prompts?: Record<string, string>
}

/** The prompt for passages: the checkpoint's passage/document prompt (a literal prefix), else none. */
export function passagePrompt(encoder: EvalEncoder): Prompt {
  return literalPrompt(encoder.prompts?.passage ?? encoder.prompts?.document ?? encoder.prompts?.corpus ?? '')
}

/** The prompt for queries and STS texts: the task instruction in the template, else the checkpoint's query prompt for retrieval. */
export function queryPrompt(encoder: EvalEncoder, instruction: string | undefined, options: {instructions?: boolean; instructionTemplate?: string}, type: 'retrieval' | 'sts'): Prompt {
  if ((options.instructions ?? true) && instruction) return fillTemplate(options.instructionTemplate ?? INSTRUCTION_TEMPLATE, instruction)
  return literalPrompt(type === 'retrieval' ? (encoder.prompts?.query ?? '') : '')
}

export type {EvalEvent, EvalProgressEvent, EvalTaskEvent} from '../core/events.js'

export interface EvaluateOptions {
  /** Where task data lives (see src/eval/task-data.ts). */
  dataDir: string
  /** On-disk embedding cache; in-memory when absent. */
  cacheDir?: string
  /** Encoder batch size (default 32). */
  batchSize?: number
  /** Max tokens per text (default: the encoder's). */
  maxLength?: number
  /** Token budget per encoder batch, padding included (see the encoder's EncodeOptions.maxTokensPerBatch). */
  maxTokensPerBatch?: number
  /** Documents retrieved per query (default 1000, the largest cutoff). */
  topK?: number
  /** Use the tasks' instructions (default true). */
  instructions?: boolean
  /** Instruction template, syntax in src/core/prompts.ts (default "Instruction: {instruction} Query: "). */
  instructionTemplate?: string
  /** Corpus rows per search chunk (default 16384) and queries per matrix product (default 256). */
  corpusChunkSize?: number
  queryBatchSize?: number
  /** Progress: each task's stages (eval-progress), then its scores (eval-task). */
  onEvent?: (event: EvalEvent) => void
  /** Also measure the geometry of the space (isotropy; token-state spectrum when the encoder exposes tokenize/forward). */
  geometry?: boolean
  /** Evaluate only the first N STS pairs / N judged queries of each task (quick checks; the corpus stays whole). */
  limit?: number
  /** Reuse one store across calls (hit/miss counters); created from cacheDir otherwise. */
  store?: EmbeddingStore
}

/** The metrics of one task, MTEB key names, plus main_score. */
export type TaskScores = Record<string, number> & {main_score: number}

export interface TaskEvaluation {
  task: TaskDefinition
  split: string
  scores: TaskScores
  /** Seconds spent on this task (encoding + scoring). */
  evaluationTime: number
  /** Pairs (STS) or queries/documents (retrieval). */
  counts: Record<string, number>
  /** Files the data came from. */
  sources: string[]
  /** The prompt of queries / STS texts: its prefix ("" for none), or `prefix{text}suffix` when text follows (describePrompt). */
  prompt: string
  cache: {hits: number; misses: number}
  geometry?: Geometry
  /** What was read but looks wrong (e.g. qrels grading a pair twice differently). */
  warnings: string[]
}

/**
 * Embeds texts through the store, with progress reported per slice. `texts` is read a slice at a
 * time (a streamed corpus: text-source.ts); an array is taken as it is.
 */
export async function encodeTexts(
  encoder: EvalEncoder,
  texts: TextSource | readonly string[],
  key: {task: string; split: string; role: string; prompt: Prompt},
  options: Pick<EvaluateOptions, 'batchSize' | 'maxLength' | 'maxTokensPerBatch'> & {store: EmbeddingStore; onEvent?: (event: EncodeProgressEvent) => void},
): Promise<EmbeddingMatrix> {
  const maxLength = options.maxLength ?? encoder.maxLength ?? 512
  return options.store.embed(
    {model: encoder.fingerprint(), task: key.task, split: key.split, role: key.role, prompt: key.prompt.prefix, ...(key.prompt.suffix ? {promptSuffix: key.prompt.suffix} : {}), maxLength},
    texts,
    // the encoder sorts each window of the slice by token count (less padding) and returns input order;
    // the prompt is always passed (NO_PROMPT included) so a checkpoint's default prompt never applies unseen by the cache key
    // with a token budget and no batch size given, the budget alone sets the rows per batch
    async (slice) =>
      encoder.encode([...slice], {
        instruction: key.prompt,
        maxLength,
        ...(options.maxTokensPerBatch ? {maxTokensPerBatch: options.maxTokensPerBatch, ...(options.batchSize ? {batchSize: options.batchSize} : {})} : {batchSize: options.batchSize ?? 32}),
      }),
    {onEvent: options.onEvent},
  )
}

function rowsOf(matrix: Float32Array, count: number, dim: number): Float32Array[] {
  return Array.from({length: count}, (_, i) => matrix.subarray(i * dim, (i + 1) * dim))
}

export async function evaluateTask(encoder: EvalEncoder, task: TaskDefinition, options: EvaluateOptions): Promise<TaskEvaluation> {
  // what the task's data holds open (a streamed corpus file) is closed however the task ends
  const opened: TextSource[] = []
  try {
    return await evaluateOpened(encoder, task, options, opened)
  } finally {
    for (const source of opened) await source.close()
  }
}

async function evaluateOpened(encoder: EvalEncoder, task: TaskDefinition, options: EvaluateOptions, opened: TextSource[]): Promise<TaskEvaluation> {
  const started = performance.now()
  const store = options.store ?? new EmbeddingStore(options.cacheDir)
  const before = {hits: store.hits, misses: store.misses}
  const emit = options.onEvent ?? (() => {})
  const report = (progress: Omit<EvalProgressEvent, 'type' | 'task'>) => emit({type: 'eval-progress', task: task.name, ...progress})
  const useInstructions = options.instructions ?? true
  const template = options.instructionTemplate ?? INSTRUCTION_TEMPLATE
  report({stage: 'load'})
  let scores: TaskScores
  let counts: Record<string, number>
  let sources: string[]
  let prompt: Prompt
  let geometry: Geometry | undefined
  let warnings: string[] = []
  const geometryOf = async (m: EmbeddingMatrix, texts: TextSource | readonly string[], ids: readonly string[]) => {
    if (!options.geometry) return undefined
    report({stage: 'score', detail: 'geometry'})
    const first = (await m.chunks(ids, 4096).next()).value!
    const sample = await textSource(texts).slice(0, 64)
    const maxLength = Math.min(options.maxLength ?? encoder.maxLength ?? 128, 128)
    return measureGeometry({rows: first.vectors, count: first.ids.length, dim: m.dim}, hasTokenStates(encoder) ? {encoder, texts: [...sample], maxLength} : undefined)
  }
  if (task.type === 'sts') {
    const data = await loadStsData(task, options.dataDir)
    if (options.limit !== undefined && data.text1.length > options.limit) {
      data.text1 = data.text1.slice(0, options.limit)
      data.text2 = data.text2.slice(0, options.limit)
      data.gold = data.gold.slice(0, options.limit)
    }
    prompt = queryPrompt(encoder, task.instruction ?? data.instruction, {instructions: useInstructions, instructionTemplate: template}, 'sts')
    // Each distinct text is encoded once, so a pair of identical texts gets one vector twice and
    // scores exactly 1.0 on every backend (two encodings in different batches, padded differently,
    // could differ in the last bits and break the tie MTEB sees).
    const position = new Map<string, number>()
    for (const text of [...data.text1, ...data.text2]) if (!position.has(text)) position.set(text, position.size)
    const texts = [...position.keys()]
    const embedded = await encodeTexts(encoder, texts, {task: task.name, split: task.split, role: 'texts', prompt}, {
      ...options,
      store,
      onEvent: (e) => report({stage: 'encode', done: e.done, total: texts.length}),
    })
    report({stage: 'score'})
    const rows = rowsOf(await embedded.readAll(), embedded.count, embedded.dim)
    const s = stsScores(
      data.text1.map((t) => rows[position.get(t)!]),
      data.text2.map((t) => rows[position.get(t)!]),
      data.gold,
    )
    scores = {...s, main_score: s[task.mainScore as keyof typeof s] ?? s.cosine_spearman}
    geometry = await geometryOf(embedded, texts, texts.map((_, i) => String(i)))
    counts = {pairs: data.text1.length, texts: texts.length}
    sources = data.sources
  } else {
    const data = await loadRetrievalData(task, options.dataDir)
    opened.push(data.corpus)
    warnings = data.warnings
    if (options.limit !== undefined && data.queryIds.length > options.limit) {
      const kept = new Set(data.queryIds.slice(0, options.limit))
      data.queryIds = data.queryIds.slice(0, options.limit)
      data.queryTexts = data.queryTexts.slice(0, options.limit)
      data.qrels = Object.fromEntries(Object.entries(data.qrels).filter(([q]) => kept.has(q)))
    }
    prompt = queryPrompt(encoder, task.instruction ?? data.instruction, {instructions: useInstructions, instructionTemplate: template}, 'retrieval')
    const total = data.queryTexts.length + data.corpus.count
    const queries = await encodeTexts(encoder, data.queryTexts, {task: task.name, split: task.split, role: 'queries', prompt}, {
      ...options,
      store,
      onEvent: (e) => report({stage: 'encode', detail: 'queries', done: e.done, total}),
    })
    const corpus = await encodeTexts(encoder, data.corpus, {task: task.name, split: 'corpus', role: 'corpus', prompt: passagePrompt(encoder)}, {
      ...options,
      store,
      onEvent: (e) => report({stage: 'encode', detail: 'corpus', done: data.queryTexts.length + e.done, total}),
    })
    const k = Math.min(options.topK ?? Math.max(...DEFAULT_CUTOFFS), corpus.count)
    // hits as global corpus positions (the chunks stream the corpus in order)
    const table = await exactSearchTable(await queries.readAll(), data.queryIds, queries.dim, corpus.chunks(data.corpusIds, options.corpusChunkSize ?? 16384), {
      k,
      ignoreIdenticalIds: task.ignoreIdenticalIds,
      queryBatchSize: options.queryBatchSize,
      onEvent: (e) => report({stage: 'search', done: e.done, total: corpus.count}),
    })
    report({stage: 'score'})
    const acc = new RetrievalMetricsAccumulator()
    data.queryIds.forEach((qid, q) => {
      const n = table.count[q]
      const base = q * table.k
      const order = Array.from({length: n}, (_, j) => j)
      // trec_eval order: score descending, then document id descending
      order.sort((a, b) => {
        const d = table.scores[base + b] - table.scores[base + a]
        if (d !== 0) return d
        const ia = data.corpusIds[table.docs[base + a]]
        const ib = data.corpusIds[table.docs[base + b]]
        return ia < ib ? 1 : ia > ib ? -1 : 0
      })
      acc.add(qid, order.map((j) => data.corpusIds[table.docs[base + j]]), data.qrels[qid])
    })
    const m = acc.result()
    scores = {...m.scores, main_score: m.scores[task.mainScore] ?? m.scores.ndcg_at_10}
    counts = {queries: data.queryIds.length, evaluatedQueries: m.evaluatedQueries, documents: data.corpusIds.length}
    geometry = await geometryOf(corpus, data.corpus, data.corpusIds)
    sources = data.sources
  }
  const evaluationTime = (performance.now() - started) / 1000
  report({stage: 'done', detail: `${task.mainScore} ${scores.main_score.toFixed(4)}`})
  emit({type: 'eval-task', task: task.name, split: task.split, main_score: scores.main_score, scores, evaluation_time: evaluationTime})
  return {
    task,
    split: task.split,
    scores,
    evaluationTime,
    counts,
    sources,
    prompt: describePrompt(prompt),
    cache: {hits: store.hits - before.hits, misses: store.misses - before.misses},
    ...(geometry ? {geometry} : {}),
    warnings,
  }
}

/**
 * Evaluates each task in turn (one shared embedding store), each of its splits (`taskSplits`) on its
 * own data: one TaskEvaluation per task and split, in order. The scored split (`scoredSplit`)
 * without data throws its TaskDataError; a further split whose data is missing is skipped and
 * reported (`unscored`, and an eval-progress "done" event saying so); no other split is ever scored
 * in a split's place. Data that is there but unreadable always throws.
 */
export async function runTasks(
  encoder: EvalEncoder,
  tasks: readonly TaskDefinition[],
  options: EvaluateOptions & {unscored?: {task: string; split: string; reason: string}[]},
): Promise<TaskEvaluation[]> {
  const store = options.store ?? new EmbeddingStore(options.cacheDir)
  const out: TaskEvaluation[] = []
  for (const task of tasks) {
    for (const split of taskSplits(task)) {
      try {
        out.push(await evaluateTask(encoder, {...task, split}, {...options, store}))
      } catch (error) {
        if (!isMissingSplit(error) || split === scoredSplit(task)) throw error
        options.unscored?.push({task: task.name, split, reason: (error as Error).message})
        options.onEvent?.({type: 'eval-progress', task: task.name, stage: 'done', detail: `split ${split} not scored: no data`})
      }
    }
  }
  return out
}

/** Whether an error says a split's data is missing (not unreadable: that is never skipped). */
export function isMissingSplit(error: unknown): boolean {
  return error instanceof TaskDataError && (error.data as {missing?: boolean} | undefined)?.missing === true
}

/**
 * In-training evaluation entry point: task definitions or task names in (names resolve through the
 * registry's benchmarks and `configTasks`, like `codiemb eval --tasks`), `{taskName: scores}` out (scores carry
 * `main_score` and every metric; the scored split under the task's name, further splits as `taskName/split`). Give the trainer's current model as `encoder`; its fingerprint
 * changes with the weights, so the cache never serves stale vectors.
 */
export async function evaluateTasks(
  encoder: EvalEncoder,
  tasks: readonly (string | TaskDefinition)[],
  options: EvaluateOptions & {registry: Registry; configTasks?: (string | ConfigTask)[]},
): Promise<Record<string, TaskScores>> {
  let definitions = tasks.filter((t): t is TaskDefinition => typeof t !== 'string')
  const names = tasks.filter((t): t is string => typeof t === 'string')
  if (names.length) {
    // task names (as a train config lists them) resolve like `codiemb eval --tasks`
    const registry = options.registry
    const {resolveTasks} = await import('./resolve-tasks.js')
    definitions = [...definitions, ...(await resolveTasks(registry, {tasks: names, configTasks: options.configTasks}))]
  }
  const results = await runTasks(encoder, definitions, options)
  // a task's scored split under its name, any further split as "name/split"
  return Object.fromEntries(results.map((r) => [r.split === scoredSplit(r.task) ? r.task.name : `${r.task.name}/${r.split}`, r.scores]))
}
