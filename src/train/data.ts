/**
 * Training data: the Arrow record files written by `codiemb prepare`, checked (data-file.ts) and
 * opened for row-level reads — the trainer never holds a dataset in memory: at start-up it reads
 * footers, offsets and numeric columns (no text), keeps the file row numbers of the rows it leaves
 * out (row-numbers.ts: at most 4 bytes a row, nothing when all are usable), and a batch's rows are
 * read when the batch is assembled, ahead of the step on the
 * prefetch path (io/record-rows.ts). Plus the per-batch assembly of texts — choosing each query's
 * P positives and N hard negatives, checking each row's texts, and building the model inputs with
 * the instruction template (src/core/prompts.ts, shared with evaluation and embedding).
 *
 * A dataset's `rows` is either an array (rows in memory: tests, and `inMemory`, the reference the
 * streamed path is tested against) or a RowSource; both have `length`, and batches are assembled
 * the same way from either, so the two give bit-identical batches.
 */
import type {BatchPart} from './samplers/types.js'
import {Rng} from '../core/rng.js'
import {indices} from './samplers/compact.js'
import {applyPrompt, fillTemplate, type InstructionOptions} from '../core/prompts.js'
import type {IrExampleRecord, StsPairRecord} from '../io/arrow-records.js'
import {RecordChecker, formatRowProblem} from '../io/record-checks.js'
import type {ReadStats} from '../io/record-rows.js'
import {TrainingDataError, openTrainingFile, readTrainingFile} from './data-file.js'
import {RowNumbers} from './row-numbers.js'

export type {TaskKind} from '../core/task-kind.js'
export {PAPER_INSTRUCTIONS, type InstructionOptions} from '../core/prompts.js'
export {TrainingDataError} from './data-file.js'

export interface TrainingDatasetSpec {
  /** An Arrow file from `codiemb prepare` (kind ir-example or sts-pair). */
  path: string
  /** Display name (default: the file's codiemb.dataset metadata, else its path). */
  name?: string
  /** Overrides the instruction stored in the file ("" disables it). */
  instruction?: string
  /** Keep only N usable rows (quick runs): the first N, or a seeded random N with pick "random". */
  limit?: number
  pick?: 'first' | 'random'
}

/** The positions `limit` keeps among `count` usable rows: the first N, or (pick "random") a seeded sample in file order (undefined: all). */
function limitIndices(count: number, spec: TrainingDatasetSpec, seed: number): number[] | undefined {
  if (!spec.limit || spec.limit >= count) return undefined
  if (spec.pick !== 'random') return Array.from({length: spec.limit}, (_, i) => i)
  // An Int32Array shuffles with the draws of a number[] (core/rng.ts) at 4 bytes a row.
  return Array.from(new Rng(seed).shuffle(indices(count)).subarray(0, spec.limit).sort())
}

/** What every training dataset carries besides its rows. */
interface DatasetCommon {
  name: string
  path: string
  /** Rows in the file that the IR loss cannot use (fewer than N negatives). */
  dropped: number
  instructionOverride?: string
  /** Each row's row number in the file (0-based), for messages; absent: rows are the file's, in order. */
  fileRows?: ArrayLike<number> | RowNumbers
  /** An identity of the file's content (its footer checksum, or the manifest's sha256), recorded in checkpoints. */
  digest?: string
  /** What the loader could not check (a file without checksums), for the run to report. */
  warnings?: string[]
}

/** A dataset's rows read on demand: `length` rows, numbered 0…length−1 as the sampler numbers them. */
export interface RowSource<T> {
  readonly length: number
  /** Rows by index, in the order asked. */
  read(indices: readonly number[]): Promise<T[]>
  /** What reading cost so far (the file's counters). */
  readonly stats: ReadStats
  close(): Promise<void>
}

export interface IrTrainingDataset extends DatasetCommon {
  task: 'ir'
  rows: IrExampleRecord[] | RowSource<IrExampleRecord>
}

export interface StsTrainingDataset extends DatasetCommon {
  task: 'sts'
  rows: StsPairRecord[] | RowSource<StsPairRecord>
}

export type TrainingDataset = IrTrainingDataset | StsTrainingDataset

export interface LoadOptions {
  /** Read every row into memory (the pre-streaming path; the streamed trainer's test reference). Default: stream. */
  inMemory?: boolean
}

/**
 * Checks one prepared file (data-file.ts) and opens it for row-level reads (or, `inMemory`, reads
 * it whole); IR rows are kept only if they have ≥ `negatives` negatives. Close a streamed dataset
 * with closeTrainingData.
 */
export async function loadTrainingDataset(spec: TrainingDatasetSpec, negatives: number, seed = 0, options: LoadOptions = {}): Promise<TrainingDataset> {
  const file = options.inMemory ? await readTrainingFile(spec.path, negatives) : await openTrainingFile(spec.path, negatives)
  const usable = file.fileRows.length
  const keep = limitIndices(usable, spec, seed)
  const common = {
    name: spec.name ?? file.dataset ?? spec.path,
    path: spec.path,
    dropped: file.dropped,
    instructionOverride: spec.instruction,
    digest: file.digest,
    warnings: file.warnings,
  }
  if (Array.isArray(file.rows)) {
    const all: object[] = file.rows
    const rows = keep ? keep.map((i) => all[i]!) : all
    const listed = file.fileRows as number[]
    const fileRows = keep ? keep.map((i) => listed[i]!) : listed
    return {task: file.kind === 'ir-example' ? 'ir' : 'sts', ...common, fileRows, rows} as TrainingDataset
  }
  const numbers = file.fileRows as RowNumbers
  const fileRows = keep ? RowNumbers.listed(Int32Array.from(keep, (i) => numbers.at(i))) : numbers
  const records = file.rows
  const source: RowSource<IrExampleRecord & StsPairRecord> = {
    length: fileRows.length,
    read: (indices) => records.readRows(indices.map((i) => fileRows.at(i))),
    get stats() {
      return records.stats
    },
    close: () => records.file.close(),
  }
  return {task: file.kind === 'ir-example' ? 'ir' : 'sts', ...common, fileRows, rows: source} as TrainingDataset
}

/** Closes the files of streamed datasets (in-memory ones hold none). */
export async function closeTrainingData(datasets: readonly TrainingDataset[]): Promise<void> {
  await Promise.all(datasets.map((d) => (Array.isArray(d.rows) ? undefined : d.rows.close())))
}

/** Rows `indices` of a dataset, from memory or from its file. */
export async function readRows<T>(rows: T[] | RowSource<T>, indices: readonly number[]): Promise<T[]> {
  if (!Array.isArray(rows)) return rows.read(indices)
  return indices.map((i) => {
    const row = rows[i]
    if (row === undefined) throw new Error(`no row ${i} (the dataset has ${rows.length})`)
    return row
  })
}

/** The row number in the file of row `index` of a dataset. */
export function fileRowOf(dataset: TrainingDataset, index: number): number {
  const rows = dataset.fileRows
  if (!rows) return index
  return rows instanceof RowNumbers ? rows.at(index) : (rows[index] ?? index)
}

const textCheckers: Partial<Record<'ir' | 'sts', RecordChecker>> = {}

/** Refuses a row whose texts the layout requires but which hold only white space, naming the file, row and field. */
function checkTexts(dataset: TrainingDataset, index: number, row: object): void {
  const checker = (textCheckers[dataset.task] ??= new RecordChecker(dataset.task === 'ir' ? 'ir-example' : 'sts-pair'))
  const problem = checker.textProblem(row, fileRowOf(dataset, index))
  if (problem) throw new TrainingDataError(`${formatRowProblem(dataset.path, problem)} (dataset ${dataset.name}; rows are numbered from 0). Fix the source and re-run \`codiemb prepare\``)
}

export interface IrBatchTexts {
  task: 'ir'
  dataset: number
  /** Each row's id (for messages about a row). */
  ids?: string[]
  queries: string[]
  queryPrefixes: string[]
  /** B·(P+N) passages: per query P positives then N negatives. */
  passages: string[]
  positives: number
  negatives: number
}

export interface StsBatchTexts {
  task: 'sts'
  dataset: number
  /** Each row's id (for messages about a row). */
  ids?: string[]
  texts1: string[]
  texts2: string[]
  prefixes1: string[]
  prefixes2: string[]
  labels: Float32Array
}

export type BatchTexts = IrBatchTexts | StsBatchTexts

/** `count` items from `pool`: a seeded sample without replacement, cycling when the pool is smaller. */
function choose(pool: string[], count: number, rng: Rng): string[] {
  if (count === 0) return []
  if (pool.length >= count) return rng.shuffle([...pool]).slice(0, count)
  return Array.from({length: count}, (_, i) => pool[i % pool.length])
}

/**
 * Assembles the texts of one batch part, reading its rows first (from the file for a streamed
 * dataset); all randomness comes from `rng`, drawn after the reads, so the texts do not depend on
 * where the rows came from.
 */
export async function batchTexts(
  datasets: TrainingDataset[],
  part: BatchPart,
  shape: {positives: number; negatives: number},
  instructions: InstructionOptions,
  rng: Rng,
): Promise<BatchTexts> {
  const dataset = datasets[part.dataset]
  if (dataset.task === 'ir') {
    const rows = await readRows<IrExampleRecord>(dataset.rows, part.rows)
    const queries: string[] = []
    const queryPrefixes: string[] = []
    const passages: string[] = []
    for (const [k, index] of part.rows.entries()) {
      const row = rows[k]!
      checkTexts(dataset, index, row)
      const query = applyPrompt(fillTemplate(instructions.template, instructions.queries ? (dataset.instructionOverride ?? row.instruction) : ''), row.query)
      queries.push(query.input)
      queryPrefixes.push(query.prefix)
      passages.push(...choose(row.positives, shape.positives, rng), ...choose(row.negatives, shape.negatives, rng))
    }
    return {task: 'ir', dataset: part.dataset, ids: rows.map((r) => r.id), queries, queryPrefixes, passages, positives: shape.positives, negatives: shape.negatives}
  }
  const rows = await readRows<StsPairRecord>(dataset.rows, part.rows)
  const texts1: string[] = []
  const texts2: string[] = []
  const prefixes1: string[] = []
  const prefixes2: string[] = []
  const labels = new Float32Array(part.rows.length)
  part.rows.forEach((index, i) => {
    const row = rows[i]!
    checkTexts(dataset, index, row)
    const prompt = fillTemplate(instructions.template, instructions.sts ? (dataset.instructionOverride ?? row.instruction) : '')
    const first = applyPrompt(prompt, row.text1)
    const second = applyPrompt(prompt, row.text2)
    texts1.push(first.input)
    texts2.push(second.input)
    prefixes1.push(first.prefix)
    prefixes2.push(second.prefix)
    labels[i] = row.score
  })
  return {task: 'sts', dataset: part.dataset, ids: rows.map((r) => r.id), texts1, texts2, prefixes1, prefixes2, labels}
}

/** A seed for batch `index` of `epoch`: per-batch randomness independent of prefetching and resume. */
export function batchSeed(seed: number, epoch: number, index: number): number {
  const rng = new Rng((seed ^ Math.imul(epoch + 1, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0)
  rng.next()
  return rng.seed()
}
