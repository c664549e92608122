/**
 * Turning a sampler batch into what a step consumes: per part, the texts (instructions, P positives
 * and N negatives per query, or STS pairs) and their token batches. Preparation is async because the
 * tokenizer may run in a worker thread; the trainer prepares batches ahead of the step (Prefetcher).
 * Every random choice (which negatives, which positives) is drawn from the batch seed, so a batch is
 * a pure function of (datasets, sampler batch, seed).
 */
import type {SamplerBatch, SamplerState} from './samplers/types.js'
import {type BatchTexts, type InstructionOptions, type TrainingDataset, batchTexts, fileRowOf} from './data.js'
import type {TaskObjective} from './objective.js'
import {Rng} from '../core/rng.js'
import type {TokenBatchLike, TrainableEncoder} from './types.js'

/** A sampler batch and where it sits in the run. */
export interface BatchItem {
  epoch: number
  /** Position of the batch within its epoch. */
  index: number
  /** Sampler state positioned at this batch (what a checkpoint taken before it must record). */
  stateBefore: SamplerState
  batch: SamplerBatch
}

/** One dataset's share of a batch, as texts and token batches. */
export type PreparedPart<B> =
  | {task: 'ir'; texts: Extract<BatchTexts, {task: 'ir'}>; queries: B; passages: B}
  | {task: 'sts'; texts: Extract<BatchTexts, {task: 'sts'}>; left: B; right: B}

export type PreparedIrPart<B> = Extract<PreparedPart<B>, {task: 'ir'}>

export interface PreparedBatch<B> {
  epoch: number
  index: number
  /** Sampler state positioned at this batch (what a checkpoint taken before it must record). */
  stateBefore: SamplerState
  /** Seeds the batch's texts and, per part (`partSeed`), its dropout masks. */
  seed: number
  parts: PreparedPart<B>[]
  /** The sampler's batch: per part, the dataset and its rows (what messages about the batch name). */
  sampled: SamplerBatch
  /** Queries (IR) or pairs (STS) over all parts. */
  examples: number
  /** Non-padding tokens over all parts. */
  tokens: number
}

/** What preparing a batch reads from the training configuration. */
export interface BatchSource<B extends TokenBatchLike> {
  encoder: TrainableEncoder<B>
  datasets: TrainingDataset[]
  objectives: TaskObjective
  maxLength: {query: number; passage: number; sts: number}
  instructions: InstructionOptions
}

/** Assembles a batch's texts with an RNG seeded by `seed` and tokenizes them. */
export async function prepareBatch<B extends TokenBatchLike>(source: BatchSource<B>, item: BatchItem, seed: number): Promise<PreparedBatch<B>> {
  const {datasets, objectives, maxLength} = source
  const rng = new Rng(seed)
  const shape = {positives: objectives.ir?.positives ?? 1, negatives: objectives.ir?.negatives ?? 0}
  const parts: PreparedPart<B>[] = []
  let examples = 0
  let tokens = 0
  for (const part of item.batch.parts) {
    const texts = await batchTexts(datasets, part, shape, source.instructions, rng)
    if (texts.task === 'ir') {
      if (!objectives.ir) throw new Error(`dataset ${datasets[part.dataset].name} is an IR dataset but no ir loss is configured`)
      const perQuery = texts.positives + texts.negatives
      const [queries, passages] = await Promise.all([
        tokenizeRows(source, texts.queries, {maxLength: maxLength.query, prefixes: texts.queryPrefixes}, part, texts.ids, 'query', (i) => i),
        tokenizeRows(source, texts.passages, {maxLength: maxLength.passage}, part, texts.ids, 'passage', (i) => Math.floor(i / perQuery)),
      ])
      parts.push({task: 'ir', texts, queries, passages})
      examples += texts.queries.length
      tokens += sum(queries.lengths) + sum(passages.lengths)
    } else {
      if (!objectives.sts) throw new Error(`dataset ${datasets[part.dataset].name} is an STS dataset but no sts loss is configured`)
      const [left, right] = await Promise.all([
        tokenizeRows(source, texts.texts1, {maxLength: maxLength.sts, prefixes: texts.prefixes1}, part, texts.ids, 'text1', (i) => i),
        tokenizeRows(source, texts.texts2, {maxLength: maxLength.sts, prefixes: texts.prefixes2}, part, texts.ids, 'text2', (i) => i),
      ])
      parts.push({task: 'sts', texts, left, right})
      examples += texts.texts1.length
      tokens += sum(left.lengths) + sum(right.lengths)
    }
  }
  return {epoch: item.epoch, index: item.index, stateBefore: item.stateBefore, seed, parts, sampled: item.batch, examples, tokens}
}

/**
 * Tokenizes one field of a batch part; a failure names the dataset, the row and the field.
 * `rowOf` maps a text's index to its row in the part (several passages share one query's row).
 */
async function tokenizeRows<B extends TokenBatchLike>(
  source: BatchSource<B>,
  texts: string[],
  options: {maxLength: number; prefixes?: string[]},
  part: SamplerBatch['parts'][number],
  ids: string[] | undefined,
  field: string,
  rowOf: (textIndex: number) => number,
): Promise<B> {
  try {
    return await source.encoder.tokenize(texts, options)
  } catch (error) {
    const e = error as Error & {index?: number}
    const dataset = source.datasets[part.dataset]
    if (typeof e.index !== 'number') throw new Error(`${dataset.path}: tokenizing a batch of ${dataset.name} failed: ${e.message}`, {cause: error})
    const rowIndex = part.rows[rowOf(e.index)]
    const id = ids?.[rowOf(e.index)]
    throw new Error(`${dataset.path}: row ${fileRowOf(dataset, rowIndex)}${id !== undefined ? ` (id ${JSON.stringify(id)})` : ''}, ${field}: cannot tokenize: ${e.message}`, {cause: error})
  }
}

/** The dropout seed of part `partIndex` of a batch: distinct per part, a pure function of the batch seed. */
export function partSeed(batchSeed: number, partIndex: number): number {
  return (batchSeed + Math.imul(partIndex + 1, 0x27d4eb2f)) >>> 0
}

function sum(xs: number[]): number {
  let s = 0
  for (const x of xs) s += x
  return s
}
