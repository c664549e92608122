/**
 * `dare` — Drop And REscale (Yu et al., 2024), then task-arithmetic or TIES.
 *
 *     Δ̃_k(p) = m_k(p) Δ_k(p) / (1 − p),    m_k(p) ~ Bernoulli(1 − p), independent per element
 *
 * (`rescale: false` drops without the 1/(1 − p) factor). Then
 *   combine "task-arithmetic" (default):  θ* = θ_0 + λ Σ_k Δ̃_k
 *   combine "ties":                       TIES (trim to `density`, elect sign, disjoint mean) on Δ̃_k
 * The masks are seeded: m_k for a tensor depends only on (seed, tensor name, k), so the same options
 * give the same model. Relations: p = 0 equals the combined method exactly.
 *
 * Options: p drop probability in [0, 1) (default 0.5), seed (default 0), rescale (default true),
 * combine, lambda λ (default 1), density (ties only, default 1: DARE already sparsifies).
 * Weight statistic (merge.json): mean coefficient of Δ_k, dropped elements counting 0.
 */
import {DropMask} from '../numeric.js'
import {MergeInputError, type TensorMergeInput} from '../types.js'
import {deltaMerger, type DeltaDrop} from './delta-method.js'
import {taskArithmetic} from './task-arithmetic.js'
import {ties} from './ties.js'

export interface DareOptions {
  p: number
  seed: number
  rescale: boolean
  combine: 'task-arithmetic' | 'ties'
  lambda: number
  density: number
}

export function resolveDareOptions(raw: Record<string, unknown>): DareOptions {
  const combine = (raw.combine as DareOptions['combine']) ?? 'task-arithmetic'
  if (combine !== 'ties' && raw.density !== undefined)
    throw new MergeInputError('dare options: "density" applies only with combine "ties"')
  return {
    p: (raw.p as number) ?? 0.5,
    seed: (raw.seed as number) ?? 0,
    rescale: (raw.rescale as boolean) ?? true,
    combine,
    lambda: (raw.lambda as number) ?? 1,
    density: (raw.density as number) ?? 1,
  }
}

/** This tensor's drop: one seeded keep/drop stream per checkpoint. */
function dropFor(input: TensorMergeInput, o: DareOptions): DeltaDrop {
  return {masks: input.checkpoints.map((_, k) => new DropMask(o.seed, input.name, k, o.p)), rescale: o.rescale}
}

function mergeTensor(input: TensorMergeInput, out: Float32Array, o: DareOptions): number[] {
  const drop = dropFor(input, o)
  return o.combine === 'ties' ? ties(input, out, {density: o.density, lambda: o.lambda}, drop) : taskArithmetic(input, out, o.lambda, drop)
}

export default deltaMerger('dare', resolveDareOptions, mergeTensor)
