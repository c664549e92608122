/**
 * The contract between the streaming merge engine (src/merge/engine.ts) and a merge method
 * (registry kind `merger`, implementations in src/merge/methods/).
 *
 * Every method is written as θ*(p) = θ_0(p) + Σ_k c_k(p) Δ_k(p) with Δ_k = θ_k − θ_0 (or, for
 * base-free methods, θ*(p) = Σ_k c_k(p) θ_k(p)). The engine hands a method one tensor at a time —
 * the base's values, each checkpoint's values and a preallocated output — so the peak memory of a
 * merge is about (K + 2) tensors, whatever the model's size. The method fills the output and returns
 * the mean over the tensor's elements of each checkpoint's coefficient c_k(p): the per-tensor weight
 * statistics recorded in merge.json.
 */
import {CodiembError} from '../core/errors.js'

/** One tensor of every input, already upcast to float32. */
export interface TensorMergeInput {
  /** The tensor's name in the checkpoints (e.g. `encoder.layer.0.attention.self.query.weight`). */
  name: string
  shape: readonly number[]
  /** θ_0; undefined only for methods with `needsBase: false` when no base was given. */
  base: Float32Array | undefined
  /** θ_1..θ_K, each as long as the output. */
  checkpoints: readonly Float32Array[]
}

/** A merge method's implementation (what a `merger` registry entry's load() returns). */
export interface Merger<Options = Record<string, unknown>> {
  name: string
  /** Whether θ_0 is required (the method works on deltas). */
  needsBase: boolean
  /** The fewest checkpoints (excluding the base) the method accepts. */
  minCheckpoints: number
  /**
   * Applies defaults and checks constraints the JSON Schema cannot express (e.g. one weight per
   * checkpoint). `raw` has already passed the entry's optionsSchema. Throws MergeOptionsError.
   */
  resolveOptions(raw: Record<string, unknown>, numCheckpoints: number): Options
  /**
   * Writes the merged tensor into `out` (which it may use as scratch space first) and returns the
   * mean coefficient of each checkpoint over the tensor's elements.
   */
  mergeTensor(input: TensorMergeInput, out: Float32Array, options: Options): number[]
}

/** Bad merge options or inputs: a usage error (exit code 2). */
export class MergeInputError extends CodiembError {
  override name = 'MergeInputError'
}
