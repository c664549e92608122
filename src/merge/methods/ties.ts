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
import {dareScales, deltaOperands, topKThreshold} from '../numeric.js'
import type {TensorMergeInput} from '../types.js'
import {beginBlock, BLOCK, deltaMerger, type DeltaDrop} from './delta-method.js'

export interface TiesOptions {
  density: number
  lambda: number
}

export function resolveTiesOptions(raw: Record<string, unknown>): TiesOptions {
  return {density: (raw.density as number) ?? 0.2, lambda: (raw.lambda as number) ?? 1}
}

/**
 * TIES on Δ̃_k: Δ_k itself, or under DARE's `drop` m_k Δ_k / (1 − p) with the keep mask m_k from
 * `drop.masks[k]` (replayed: the trim threshold pass and the merge pass see the same mask). `out` is
 * used as scratch for the threshold search before it receives the result, so no extra tensor is allocated.
 */
export function ties(input: TensorMergeInput, out: Float32Array, o: TiesOptions, drop?: DeltaDrop): number[] {
  const {base, cks, K, n} = deltaOperands(input, out)
  const masks = drop?.masks
  const scale = dareScales(masks, drop?.rescale ?? false, K)

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

  // 2 + 3. Elect and average the agreeing deltas, block by block (tight per-checkpoint loops).
  for (const m of masks ?? []) m.reset()
  const B = Math.min(BLOCK, n)
  const trimmed = new Float64Array(K * B)
  const total = new Float64Array(B)
  const acc = new Float64Array(B)
  const count = new Float64Array(B)
  const coef = new Float64Array(K)
  const lambda = o.lambda
  for (let start = 0; start < n; start += BLOCK) {
    const len = beginBlock(n, start, [total, acc, count])
    for (let k = 0; k < K; k++) {
      const c = cks[k]!
      const mask = masks?.[k]
      const s = scale[k]!
      const t = thresholds[k]!
      const off = k * B
      for (let j = 0, i = start; j < len; j++, i++) {
        let d = mask && !mask.keep() ? 0 : (c[i]! - base[i]!) * s
        if ((d < 0 ? -d : d) < t) d = 0
        trimmed[off + j] = d
        total[j]! += d
      }
    }
    for (let k = 0; k < K; k++) {
      const off = k * B
      for (let j = 0; j < len; j++) {
        const d = trimmed[off + j]!
        const tj = total[j]!
        if (d !== 0 && tj !== 0 && d > 0 === tj > 0) {
          acc[j]! += d
          count[j]!++
        }
      }
    }
    for (let j = 0, i = start; j < len; j++, i++) {
      const cj = count[j]!
      out[i] = cj === 0 ? base[i]! : base[i]! + (lambda * acc[j]!) / cj
    }
    for (let k = 0; k < K; k++) {
      const off = k * B
      let sum = 0
      for (let j = 0; j < len; j++) {
        const d = trimmed[off + j]!
        const tj = total[j]!
        if (d !== 0 && tj !== 0 && d > 0 === tj > 0) sum += 1 / count[j]!
      }
      coef[k]! += lambda * scale[k]! * sum
    }
  }
  return Array.from(coef, (c) => (n === 0 ? 0 : c / n))
}

export default deltaMerger('ties', resolveTiesOptions, (input, out, o) => ties(input, out, o))
