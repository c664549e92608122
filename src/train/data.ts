/**
 * Training data: the Arrow record files written by `codiemb prepare`, checked (data-file.ts) and
 * loaded into memory (training sets are read once per run and sampled many times), plus the
 * per-batch assembly of texts — choosing each query's P positives and N hard negatives, checking
 * each row's texts, and building the model inputs with the instruction template
 * (src/core/prompts.ts, shared with evaluation and embedding).
 */
import type {BatchPart} from './samplers/types.js'
import {Rng} from '../core/rng.js'
import {applyPrompt, fillTemplate, type InstructionOptions} from '../core/prompts.js'
import type {IrExampleRecord, StsPairRecord} from '../io/arrow-records.js'
import {RecordChecker, formatRowProblem} from '../io/record-checks.js'
import {TrainingDataError, readTrainingFile} from './data-file.js'

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

/** The positions `limit` keeps among `count` usable rows: the first N, or (pick "random") a seeded sample in file order. */
function limitIndices(count: number, spec: TrainingDatasetSpec, seed: number): number[] {
  const all = Array.from({length: count}, (_, i) => i)
  if (!spec.limit || spec.limit >= count) return all
  if (spec.pick !== 'random') return all.slice(0, spec.limit)
  return new Rng(seed).shuffle(all).slice(0, spec.limit).sort((a, b) => a - b)
}

/** What every training dataset carries besides its rows. */
interface DatasetCommon {
  name: string
  path: string
  /** Rows in the file that the IR loss cannot use (fewer than N negatives). */
  dropped: number
  instructionOverride?: string
  /** Each row's row number in the file (0-based), for messages; absent: rows are the file's, in order. */
  fileRows?: number[]
  /** An identity of the file's content (its footer checksum, or the manifest's sha256), recorded in checkpoints. */
  digest?: string
  /** What the loader could not check (a file without checksums), for the run to report. */
  warnings?: string[]
}

export interface IrTrainingDataset extends DatasetCommon {
  task: 'ir'
  rows: IrExampleRecord[]
}

export interface StsTrainingDataset extends DatasetCommon {
  task: 'sts'
  rows: StsPairRecord[]
}

export type TrainingDataset = IrTrainingDataset | StsTrainingDataset

/** Reads and checks one prepared file (data-file.ts); IR rows are kept only if they have ≥ `negatives` negatives. */
export async function loadTrainingDataset(spec: TrainingDatasetSpec, negatives: number, seed = 0): Promise<TrainingDataset> {
  const file = await readTrainingFile(spec.path, negatives)
  const keep = limitIndices(file.rows.length, spec, seed)
  const common = {
    name: spec.name ?? file.dataset ?? spec.path,
    path: spec.path,
    dropped: file.dropped,
    instructionOverride: spec.instruction,
    fileRows: keep.map((i) => file.fileRows[i]!),
    digest: file.digest,
    warnings: file.warnings,
  }
  if (file.kind === 'ir-example') return {task: 'ir', ...common, rows: keep.map((i) => file.rows[i]!)}
  return {task: 'sts', ...common, rows: keep.map((i) => file.rows[i]!)}
}

/** The row number in the file of row `index` of a dataset. */
export function fileRowOf(dataset: TrainingDataset, index: number): number {
  return dataset.fileRows?.[index] ?? index
}

const textCheckers: Partial<Record<'ir' | 'sts', RecordChecker>> = {}

/** Refuses a row whose texts the layout requires but which hold only white space, naming the file, row and field. */
function checkTexts(dataset: TrainingDataset, index: number): void {
  const checker = (textCheckers[dataset.task] ??= new RecordChecker(dataset.task === 'ir' ? 'ir-example' : 'sts-pair'))
  const row = dataset.rows[index]
  const problem = row ? checker.textProblem(row, fileRowOf(dataset, index)) : undefined
  if (problem) throw new TrainingDataError(`${formatRowProblem(dataset.path, problem)} (dataset ${dataset.name}; rows are numbered from 0). Fix the source and re-run \`codiemb prepare\``)
}

export interface IrBatchTexts {
  task: 'ir'
  dataset: number
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

/** Assembles the texts of one batch part; all randomness comes from `rng`. */
export function batchTexts(
  datasets: TrainingDataset[],
  part: BatchPart,
  shape: {positives: number; negatives: number},
  instructions: InstructionOptions,
  rng: Rng,
): BatchTexts {
  const dataset = datasets[part.dataset]
  if (dataset.task === 'ir') {
    const queries: string[] = []
    const queryPrefixes: string[] = []
    const passages: string[] = []
    for (const index of part.rows) {
      checkTexts(dataset, index)
      const row = dataset.rows[index]
      const query = applyPrompt(fillTemplate(instructions.template, instructions.queries ? (dataset.instructionOverride ?? row.instruction) : ''), row.query)
      queries.push(query.input)
      queryPrefixes.push(query.prefix)
      passages.push(...choose(row.positives, shape.positives, rng), ...choose(row.negatives, shape.negatives, rng))
    }
    return {task: 'ir', dataset: part.dataset, queries, queryPrefixes, passages, positives: shape.positives, negatives: shape.negatives}
  }
  const texts1: string[] = []
  const texts2: string[] = []
  const prefixes1: string[] = []
  const prefixes2: string[] = []
  const labels = new Float32Array(part.rows.length)
  part.rows.forEach((index, i) => {
    checkTexts(dataset, index)
    const row = dataset.rows[index]
    const prompt = fillTemplate(instructions.template, instructions.sts ? (dataset.instructionOverride ?? row.instruction) : '')
    const first = applyPrompt(prompt, row.text1)
    const second = applyPrompt(prompt, row.text2)
    texts1.push(first.input)
    texts2.push(second.input)
    prefixes1.push(first.prefix)
    prefixes2.push(second.prefix)
    labels[i] = row.score
  })
  return {task: 'sts', dataset: part.dataset, texts1, texts2, prefixes1, prefixes2, labels}
}

/** A seed for batch `index` of `epoch`: per-batch randomness independent of prefetching and resume. */
export function batchSeed(seed: number, epoch: number, index: number): number {
  const rng = new Rng((seed ^ Math.imul(epoch + 1, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0)
  rng.next()
  return rng.seed()
}
