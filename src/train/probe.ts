/**
 * The probe: fixed batches per task, drawn once from the training data, on which the full objective
 * is measured in eval mode (no dropout, no gradients). Measured on the same texts every time, the
 * probe loss is a training-loss curve free of batch-composition noise.
 */
import * as tf from '@tensorflow/tfjs-core'
import {type BatchSource, type PreparedPart, prepareBatch} from './batch.js'
import type {ProbeResult} from './events.js'
import {sliceBatch} from './gradcache.js'
import type {ComponentSink} from './objective.js'
import type {PartLoss} from './part-loss.js'
import type {Sampler} from './samplers/types.js'
import {LossTally, readScalar} from './tally.js'
import {Rng} from '../core/rng.js'
import {indices} from './samplers/compact.js'
import type {TokenBatchLike} from './types.js'

export interface ProbeOptions {
  /** Probe batches per task. */
  batches: number
  /** Seeds the draw (default: the training seed). */
  seed?: number
}

export interface ProbeBatch<B> {
  part: PreparedPart<B>
  seed: number
}

/**
 * Draws the probe batches once: per task, `batches` batches of that task's batch size, taking the
 * task's datasets in turn and each dataset's rows in a seeded shuffled order (no row twice until a
 * dataset is used up). Negatives and positives are chosen with per-batch seeds, so every
 * measurement sees exactly the same texts. Independent of the sampler's plan and RNG (the sampler
 * only gives the batch sizes).
 */
export async function drawProbeBatches<B extends TokenBatchLike>(
  options: ProbeOptions,
  source: BatchSource<B> & {sampler: Sampler; seed: number},
): Promise<ProbeBatch<B>[]> {
  if (!Number.isInteger(options.batches) || options.batches < 1) throw new Error(`probe batches must be a positive integer, got ${options.batches}`)
  const rng = new Rng(((options.seed ?? source.seed) ^ 0x5eed9b0b) >>> 0)
  const out: ProbeBatch<B>[] = []
  for (const task of ['ir', 'sts'] as const) {
    const members = source.datasets.map((d, i) => ({d, i})).filter(({d}) => d.task === task)
    if (members.length === 0 || !source.objectives[task]) continue
    const orders = members.map(({d}) => rng.shuffle(indices(d.rows.length)))
    const cursors = members.map(() => 0)
    for (let b = 0; b < options.batches; b++) {
      const m = b % members.length
      const order = orders[m]
      const size = Math.min(source.sampler.batchSize(task), order.length)
      const rows = Array.from({length: size}, (_, k) => order[(cursors[m] + k) % order.length])
      cursors[m] += size
      const seed = rng.seed()
      const item = {epoch: 0, index: 0, stateBefore: source.sampler.getState(), batch: {parts: [{dataset: members[m].i, rows}]}}
      const prepared = await prepareBatch(source, item, seed)
      out.push({part: prepared.parts[0], seed})
    }
  }
  return out
}

/** The objective on the probe batches in eval mode, outside any gradient tape: per-task means over the batches. */
export function measureProbe<B extends TokenBatchLike>(
  probe: ProbeBatch<B>[],
  partLoss: PartLoss<B>,
  at: {step: number; totalSteps: number; when: ProbeResult['when']},
): ProbeResult {
  const started = performance.now()
  const tally = new LossTally()
  const rows: Record<string, number> = {}
  for (const {part, seed} of probe) {
    const sink: ComponentSink = new Map()
    const value = tf.tidy(() => evalLoss(partLoss, part, seed, sink))
    tally.add(part.task, readScalar(value), sink)
    rows[part.task] = (rows[part.task] ?? 0) + (part.task === 'ir' ? part.texts.queries.length : part.texts.texts1.length)
  }
  return {
    type: 'probe',
    step: at.step,
    totalSteps: at.totalSteps,
    when: at.when,
    loss: tally.means(),
    components: tally.componentMeans(),
    batches: tally.counts,
    rows,
    seconds: (performance.now() - started) / 1000,
  }
}

/**
 * One part's objective without dropout. IR parts with a GradCache chunk size are embedded chunk by
 * chunk (the same chunks training uses), other parts in one pass.
 */
function evalLoss<B extends TokenBatchLike>(partLoss: PartLoss<B>, part: PreparedPart<B>, seed: number, sink: ComponentSink): tf.Scalar {
  const ir = partLoss.objectives.ir
  const chunkSize = part.task === 'ir' ? partLoss.chunkSize : undefined
  if (part.task !== 'ir' || !chunkSize) return partLoss.loss(part, seed, false, sink)
  const embedAll = (batch: B) => tf.concat(sliceBatch(batch, chunkSize).map((chunk) => partLoss.embed(chunk, seed, undefined, false).last), 0) as tf.Tensor2D
  return ir!.compute({queries: embedAll(part.queries), passages: embedAll(part.passages), positives: part.texts.positives, negatives: part.texts.negatives}, sink)
}
