/**
 * Per-task means of objective values over the batch parts of a step or of a probe: the mean loss
 * Σ value / parts per task, and for objectives with several terms each term's mean the same way
 * (what StepEvent.components and ProbeResult.components report).
 */
import type * as tf from '@tensorflow/tfjs-core'
import type {ComponentSink} from './objective.js'

export class LossTally {
  private readonly sums: Record<string, number> = {}
  /** Parts added per task. */
  readonly counts: Record<string, number> = {}
  private readonly componentSums: Record<string, Record<string, number>> = {}

  /** Adds one part's objective value and reads (and disposes) the term values in `sink`. */
  add(task: string, value: number, sink?: ComponentSink): void {
    this.sums[task] = (this.sums[task] ?? 0) + value
    this.counts[task] = (this.counts[task] ?? 0) + 1
    if (!sink || sink.size === 0) return
    const bucket = (this.componentSums[task] ??= {})
    for (const [name, term] of sink) bucket[name] = (bucket[name] ?? 0) + readScalar(term)
  }

  /** Mean objective value per task, tasks in the order first added. */
  means(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const task of Object.keys(this.sums)) out[task] = this.sums[task] / this.counts[task]
    return out
  }

  /** Mean value of each term, per task with several terms. */
  componentMeans(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {}
    for (const [task, bucket] of Object.entries(this.componentSums)) out[task] = Object.fromEntries(Object.entries(bucket).map(([k, v]) => [k, v / this.counts[task]]))
    return out
  }
}

/** The value of a scalar tensor, which is disposed. */
export function readScalar(t: tf.Tensor): number {
  const v = t.dataSync()[0]
  t.dispose()
  return v
}

/**
 * Mean loss per task over the first and the last quarter (at least 1, at most 100 steps) of the
 * steps that had that task. Per-batch losses are noisy (mid-infonce only has anchors in some STS
 * batches), so short windows would compare noise.
 */
export function lossWindows(history: {step: number; loss: Record<string, number>}[]): {lossFirst: Record<string, number>; lossLast: Record<string, number>} {
  const lossFirst: Record<string, number> = {}
  const lossLast: Record<string, number> = {}
  const tasks = new Set(history.flatMap((h) => Object.keys(h.loss)))
  for (const task of tasks) {
    const values = history.filter((h) => task in h.loss).map((h) => h.loss[task])
    const window = Math.min(100, Math.max(1, Math.floor(values.length / 4)))
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    lossFirst[task] = mean(values.slice(0, window))
    lossLast[task] = mean(values.slice(-window))
  }
  return {lossFirst, lossLast}
}
