/**
 * `ties` — TIES-merging (Yadav et al., 2023): trim, elect sign, disjoint merge.
 *
 *  1. Trim: in each tensor keep the top `density` fraction of each Δ_k by magnitude, zero the
 *     rest: Δ̂_k(p) = Δ_k(p) if |Δ_k(p)| >= t_k, else 0 (t_k the round(density·n)-th largest |Δ_k|).
 *  2. Elect: s(p) = sign(Σ_k Δ̂_k(p)) — the sign with the larger total mass.
 *  3. Disjoint merge: average the trimmed deltas that agree with it,
 *        A(p) = { k : Δ̂_k(p) ≠ 0 and sign(Δ̂_k(p)) = s(p) },
 *        θ*(p) = θ_0(p) + λ Σ_{k∈A(p)} Δ̂_k(p) / |A(p)|     (θ_0(p) where A(p) is empty)
 *
 * Options: density in [0, 1] (default 0.2), lambda λ (default 1).
 * Relations: density 1 with no sign conflict (and no zero delta) equals task-arithmetic with λ/K;
 * `dare` with combine "ties" replaces nothing — it sparsifies the deltas randomly first, then runs
 * these three steps on them.
 * Weight statistic (merge.json): mean of λ/|A(p)| over elements where k ∈ A(p) (0 elsewhere).
 */
import {type DropMask, topKThreshold} from '../../merge/numeric.js'
import type {Merger, TensorMergeInput} from '../../merge/types.js'

export interface TiesOptions {
  density: number
  lambda: number
}

export function resolveTiesOptions(raw: Record<string, unknown>): TiesOptions {
  return {density: (raw.density as number) ?? 0.2, lambda: (raw.lambda as number) ?? 1}
}

/**
 * TIES on Δ̃_k: Δ_k itself, or under DARE m_k Δ_k / (1 − p) with the keep mask from `masks[k]`
 * (replayed: the trim threshold pass and the merge pass see the same mask). `out` is used as
 * scratch for the threshold search before it receives the result, so no extra tensor is allocated.
 */
export function ties(
  input: TensorMergeInput,
  out: Float32Array,
  o: TiesOptions,
  masks?: DropMask[],
  rescale = true,
): number[] {
  const base = input.base!
  const cks = input.checkpoints
  const K = cks.length
  const n = out.length
  const scale = masks && rescale ? masks.map((m) => 1 / (1 - m.dropProbability)) : new Array<number>(K).fill(1)

  // 1. Trim thresholds t_k (density 1 keeps everything: no need to search).
  const thresholds = new Float64Array(K)
  const keep = Math.round(o.density * n)
  if (keep < n) {
    for (let k = 0; k < K; k++) {
      const c = cks[k]!
      const mask = masks?.[k]
      mask?.reset()
      for (let i = 0; i < n; i++) {
        const dropped = mask ? !mask.keep() : false
        const d = dropped ? 0 : (c[i]! - base[i]!) * scale[k]!
        out[i] = d < 0 ? -d : d
      }
      thresholds[k] = topKThreshold(out, keep)
    }
  }

  // 2 + 3. Elect and average the agreeing deltas, element by element.
  for (const m of masks ?? []) m.reset()
  const d = new Float64Array(K)
  const coef = new Float64Array(K)
  const lambda = o.lambda
  for (let i = 0; i < n; i++) {
    const b = base[i]!
    let total = 0
    for (let k = 0; k < K; k++) {
      const dropped = masks ? !masks[k]!.keep() : false
      let dk = dropped ? 0 : (cks[k]![i]! - b) * scale[k]!
      if ((dk < 0 ? -dk : dk) < thresholds[k]!) dk = 0
      d[k] = dk
      total += dk
    }
    let acc = 0
    let count = 0
    if (total !== 0) {
      for (let k = 0; k < K; k++) {
        const dk = d[k]!
        if (dk !== 0 && dk > 0 === total > 0) {
          acc += dk
          count++
        }
      }
    }
    if (count === 0) {
      out[i] = b
      continue
    }
    out[i] = b + (lambda * acc) / count
    const c = lambda / count
    for (let k = 0; k < K; k++) {
      const dk = d[k]!
      if (dk !== 0 && dk > 0 === total > 0) coef[k]! += c * scale[k]!
    }
  }
  return Array.from(coef, (c) => (n === 0 ? 0 : c / n))
}

const tiesMerger: Merger<TiesOptions> = {
  name: 'ties',
  needsBase: true,
  minCheckpoints: 1,
  resolveOptions: (raw) => resolveTiesOptions(raw),
  mergeTensor: (input, out, o) => ties(input, out, o),
}
export default tiesMerger
