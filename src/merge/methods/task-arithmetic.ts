/**
 * `task-arithmetic` — adding task vectors (Ilharco et al., 2023):
 *
 *     θ*(p) = θ_0(p) + λ Σ_k Δ_k(p),      Δ_k = θ_k − θ_0
 *
 * Options: lambda λ (default 1; λ = 1/K averages the fine-tunes, i.e. their soup).
 * Relations: one checkpoint with λ = 1 returns it; λ = 0 returns the base; `dare` with
 * combine "task-arithmetic" applies this to randomly sparsified deltas.
 * Weight statistic (merge.json): λ for every checkpoint (λ times the kept fraction over (1−p) under DARE).
 */
import type {TensorMergeInput} from '../types.js'
import {dareScales, deltaOperands} from '../numeric.js'
import {deltaMerger, type DeltaDrop} from './delta-method.js'

export interface TaskArithmeticOptions {
  lambda: number
}

/**
 * θ_0 + λ Σ_k Δ̃_k where Δ̃_k = Δ_k, or under DARE's `drop` Δ̃_k = m_k Δ_k / (1 − p) with the keep mask
 * m_k drawn from `drop.masks[k]` (without the 1/(1 − p) when `drop.rescale` is false). Returns the mean
 * coefficient of each Δ_k.
 */
export function taskArithmetic(input: TensorMergeInput, out: Float32Array, lambda: number, drop?: DeltaDrop): number[] {
  const {base, cks, K, n} = deltaOperands(input, out)
  if (!drop) {
    for (let i = 0; i < n; i++) {
      const b = base[i]!
      let acc = 0
      for (let k = 0; k < K; k++) acc += cks[k]![i]! - b
      out[i] = b + lambda * acc
    }
    return new Array<number>(K).fill(lambda)
  }
  const {masks} = drop
  const kept = new Float64Array(K)
  const scale = dareScales(masks, drop.rescale, K)
  for (const m of masks) m.reset()
  for (let i = 0; i < n; i++) {
    const b = base[i]!
    let acc = 0
    for (let k = 0; k < K; k++) {
      if (masks[k]!.keep()) {
        acc += (cks[k]![i]! - b) * scale[k]!
        kept[k]!++
      }
    }
    out[i] = b + lambda * acc
  }
  return Array.from(kept, (c, k) => (n === 0 ? lambda : (lambda * scale[k]! * c) / n))
}

export default deltaMerger<TaskArithmeticOptions>(
  'task-arithmetic',
  (raw) => ({lambda: (raw.lambda as number) ?? 1}),
  (input, out, o) => taskArithmetic(input, out, o.lambda),
)
