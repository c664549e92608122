/**
 * Small numeric helpers for the merge methods: what a delta method loops over, a seeded,
 * reproducible drop mask and its rescale factors (DARE), and the magnitude threshold of a top-k%
 * trim (TIES). Plain typed-array loops, no tensor library.
 */
import type {TensorMergeInput} from './types.js'

/**
 * What a delta method (a merger with `needsBase`, working on Δ_k = θ_k − θ_0) loops over: θ_0,
 * which the engine always passes to such a method, the checkpoints θ_1..θ_K, K and the element
 * count n. Named as in the methods' formulas.
 */
export function deltaOperands(input: TensorMergeInput, out: Float32Array): {base: Float32Array; cks: readonly Float32Array[]; K: number; n: number} {
  return {base: input.base!, cks: input.checkpoints, K: input.checkpoints.length, n: out.length}
}

/** 32-bit FNV-1a of a string: turns (seed, tensor name, checkpoint index) into an RNG state. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

/**
 * Bernoulli keep/drop decisions for one checkpoint's delta of one tensor. The stream depends only
 * on (seed, tensor name, checkpoint index), not on the order tensors are merged in or on which
 * tensors a filter selects, so a merge is reproducible; `reset()` replays the same mask (methods
 * that read a delta twice, like DARE + TIES, rely on it). Generator: mulberry32.
 */
export class DropMask {
  private readonly initial: number
  private state: number
  /** Drop when the next uint32 is below this (p · 2^32). */
  private readonly threshold: number

  constructor(seed: number, tensorName: string, checkpoint: number, readonly dropProbability: number) {
    this.initial = fnv1a(`${seed}\u0000${tensorName}\u0000${checkpoint}`)
    this.state = this.initial
    this.threshold = dropProbability * 4294967296
  }

  reset(): void {
    this.state = this.initial
  }

  /** True with probability 1 − p. Advances the stream by one element. */
  keep(): boolean {
    this.state = (this.state + 0x6d2b79f5) | 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) >= this.threshold
  }
}

/**
 * The factor each checkpoint's kept delta is multiplied by under DARE: 1/(1 − p) with `rescale`,
 * else 1; 1 for every checkpoint when there are no masks (the plain deltas).
 */
export function dareScales(masks: readonly DropMask[] | undefined, rescale: boolean, K: number): number[] {
  return masks && rescale ? masks.map((m) => 1 / (1 - m.dropProbability)) : new Array<number>(K).fill(1)
}

/**
 * The magnitude threshold that keeps the `keep` largest of `values` (in place: `values` is
 * reordered). Elements with |x| >= the returned value are kept; ties at the threshold may keep a
 * few more. keep <= 0 gives +Infinity (keep nothing); keep >= length gives the minimum (keep all).
 */
export function topKThreshold(values: Float32Array, keep: number): number {
  const n = values.length
  if (keep <= 0 || n === 0) return Number.POSITIVE_INFINITY
  if (keep >= n) {
    let min = Number.POSITIVE_INFINITY
    for (let i = 0; i < n; i++) if (values[i]! < min) min = values[i]!
    return min
  }
  // Quickselect (Hoare partition, median-of-three pivot) for the element of rank `keep` - 1 in
  // descending order.
  const target = keep - 1
  let lo = 0
  let hi = n - 1
  while (hi > lo) {
    const mid = (lo + hi) >>> 1
    const a = values[lo]!, b = values[mid]!, c = values[hi]!
    const pivot = a > b ? (b > c ? b : a > c ? c : a) : a > c ? a : b > c ? c : b
    let i = lo
    let j = hi
    while (i <= j) {
      while (values[i]! > pivot) i++
      while (values[j]! < pivot) j--
      if (i <= j) {
        const t = values[i]!
        values[i] = values[j]!
        values[j] = t
        i++
        j--
      }
    }
    if (target <= j) hi = j
    else if (target >= i) lo = i
    else break
  }
  return values[target]!
}
