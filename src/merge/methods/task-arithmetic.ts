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
import type {Merger, TensorMergeInput} from '../types.js'
import {dareScales, deltaOperands, type DropMask} from '../numeric.js'

export interface TaskArithmeticOptions {
  lambda: number
}

/**
 * θ_0 + λ Σ_k Δ̃_k where Δ̃_k = Δ_k, or under DARE Δ̃_k = m_k Δ_k / (1 − p) with the keep mask m_k
 * drawn from `masks[k]` (without the 1/(1 − p) when `rescale` is false). Returns the mean coefficient of each Δ_k.
 */
export function taskArithmetic(
  input: TensorMergeInput,
  out: Float32Array,
  lambda: number,
  masks?: DropMask[],
  rescale = true,
): number[] {
  const {base, cks, K, n} = deltaOperands(input, out)
  if (!masks) {
    for (let i = 0; i < n; i++) {
      const b = base[i]!
      let acc = 0
      for (let k = 0; k < K; k++) acc += cks[k]![i]! - b
      out[i] = b + lambda * acc
    }
    return new Array<number>(K).fill(lambda)
  }
  const kept = new Float64Array(K)
  const scale = dareScales(masks, rescale, K)
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

const taskArithmeticMerger: Merger<TaskArithmeticOptions> = {
  name: 'task-arithmetic',
  needsBase: true,
  minCheckpoints: 1,
  resolveOptions: (raw) => ({lambda: (raw.lambda as number) ?? 1}),
  mergeTensor: (input, out, o) => taskArithmetic(input, out, o.lambda),
}
export default taskArithmeticMerger
