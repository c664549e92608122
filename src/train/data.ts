/**
 * Training data: the Arrow record files written by `codiemb prepare`, loaded into memory (training
 * sets are read once per run and sampled many times), plus the per-batch assembly of texts —
 * choosing each query's P positives and N hard negatives and building the model inputs with the
 * instruction template (src/core/prompts.ts, shared with evaluation and embedding).
 */
import {existsSync} from 'node:fs'
import {readAllRecords, readArrowMeta, type IrExampleRecord, type StsPairRecord} from '../io/arrow-records.js'
import type {BatchPart} from './samplers/types.js'
import {Rng} from '../core/rng.js'
import {CodiembError} from '../core/errors.js'
import {applyPrompt, fillTemplate, type InstructionOptions} from '../core/prompts.js'

export type {TaskKind} from '../core/task-kind.js'
export {PAPER_INSTRUCTIONS, type InstructionOptions} from '../core/prompts.js'

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

/** The rows `limit` keeps: the first N, or (pick "random") a seeded sample in file order. */
function limitRows<T>(rows: T[], spec: TrainingDatasetSpec, seed: number): T[] {
  if (!spec.limit || spec.limit >= rows.length) return rows
  if (spec.pick !== 'random') return rows.slice(0, spec.limit)
  const chosen = new Rng(seed).shuffle(rows.map((_, i) => i)).slice(0, spec.limit).sort((a, b) => a - b)
  return chosen.map((i) => rows[i])
}

export interface IrTrainingDataset {
  task: 'ir'
  name: string
  path: string
  rows: IrExampleRecord[]
  /** Rows in the file that the IR loss cannot use (no positive, or fewer than N negatives). */
  dropped: number
  instructionOverride?: string
}

export interface StsTrainingDataset {
  task: 'sts'
  name: string
  path: string
  rows: StsPairRecord[]
  dropped: number
  instructionOverride?: string
}

export type TrainingDataset = IrTrainingDataset | StsTrainingDataset

export class TrainingDataError extends CodiembError {
  override name = 'TrainingDataError'
}

/** Reads one prepared file; IR rows are kept only if they have ≥1 positive and ≥ `negatives` negatives. */
export async function loadTrainingDataset(spec: TrainingDatasetSpec, negatives: number, seed = 0): Promise<TrainingDataset> {
  if (!existsSync(spec.path)) throw new TrainingDataError(`${spec.path}: training file not found (run \`codiemb prepare\` first)`)
  const meta = await readArrowMeta(spec.path)
  const name = spec.name ?? meta.dataset ?? spec.path
  if (meta.kind === 'ir-example') {
    const all = await readAllRecords(spec.path, 'ir-example')
    const usable = all.filter((r) => r.positives.length > 0 && r.negatives.length >= negatives)
    const rows = limitRows(usable, spec, seed)
    return {task: 'ir', name, path: spec.path, rows, dropped: all.length - usable.length, instructionOverride: spec.instruction}
  }
  if (meta.kind === 'sts-pair') {
    const all = await readAllRecords(spec.path, 'sts-pair')
    const rows = limitRows(all, spec, seed)
    return {task: 'sts', name, path: spec.path, rows, dropped: 0, instructionOverride: spec.instruction}
  }
  throw new TrainingDataError(
    `${spec.path}: expected an "ir-example" or "sts-pair" record file, got ${meta.kind === undefined ? 'a file without codiemb.kind metadata' : `"${meta.kind}"`}`,
  )
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
