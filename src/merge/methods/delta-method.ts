/**
 * What the delta methods (delta, task-arithmetic, ties, dare) share. Each works on the deltas
 * Δ_k = θ_k − θ_0, so each needs the base and at least one checkpoint; dare hands its randomly
 * dropped deltas to task-arithmetic or ties; delta and ties walk a tensor block by block (beginBlock).
 * Imports only types, so the registry's entry list can read DELTA_METHOD_INPUTS without loading a method.
 */
import type {DropMask} from '../numeric.js'
import type {Merger} from '../types.js'

/** The inputs a delta method needs (a merger entry's meta and the Merger's own fields). */
export const DELTA_METHOD_INPUTS = {needsBase: true, minCheckpoints: 1} as const

/** A merger that combines the deltas of its checkpoints from the base. */
export function deltaMerger<Options>(
  name: string,
  resolveOptions: Merger<Options>['resolveOptions'],
  mergeTensor: Merger<Options>['mergeTensor'],
): Merger<Options> {
  return {name, ...DELTA_METHOD_INPUTS, resolveOptions, mergeTensor}
}

/**
 * DARE's drop, applied to the deltas before a method combines them: one seeded keep/drop mask per
 * checkpoint, and whether a kept delta is rescaled by 1/(1 − p).
 */
export interface DeltaDrop {
  masks: DropMask[]
  rescale: boolean
}

/** Elements per block: per-element work runs as tight per-checkpoint loops over one block at a time. */
export const BLOCK = 4096

/**
 * Begins the block of a tensor's n elements that starts at `start`: zeroes the per-element
 * accumulators in `scratch` (each at least min(BLOCK, n) long) and returns the block's length.
 */
export function beginBlock(n: number, start: number, scratch: readonly Float64Array[]): number {
  for (const accumulator of scratch) accumulator.fill(0)
  return Math.min(BLOCK, n - start)
}
