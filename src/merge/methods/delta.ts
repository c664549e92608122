/**
 * `delta` — delta-guided fusion (the CoDiEmb paper's merge; its exact formula is unpublished, so
 * this is codiemb's definition).
 *
 * For checkpoints θ_1..θ_K fine-tuned from the same base θ_0, with Δ_k = θ_k − θ_0:
 *
 *     θ*(p) = θ_0(p) + λ Σ_k w_k(p) Δ_k(p),      Σ_k w_k(p) = 1, w_k(p) >= 0
 *
 * so each parameter leans towards the checkpoint that moved it most. The weights come from the
 * magnitudes a_k(p) = |Δ_k(p)| (granularity `element`) or a_k = ‖Δ_k‖₂ over the whole tensor
 * (granularity `tensor`, one weight per checkpoint per tensor), with m = max_j a_j:
 *
 *   weighting `power` (default):   w_k = (a_k / m)^γ / Σ_j (a_j / m)^γ      (= a_k^γ / Σ_j a_j^γ)
 *   weighting `softmax`:           w_k = exp(a_k / (m T)) / Σ_j exp(a_j / (m T))
 *
 * Dividing by m changes nothing for `power` but keeps large γ from underflowing, and makes the
 * softmax temperature T scale-free: T → 0 picks the checkpoint with the largest change, T → ∞ gives
 * the plain average of the deltas. γ = 0 is also the plain average; γ → ∞ the largest change.
 * Where m <= ε (no checkpoint moved the parameter) the weights are uniform, 1/K.
 *
 * Weight statistic (merge.json): the mean over the tensor of λ w_k(p), the coefficient of Δ_k.
 *
 * Options: granularity (element|tensor), weighting (power|softmax), gamma γ >= 0 (default 1),
 * temperature T > 0 (default 1), lambda λ (default 1), epsilon ε >= 0 (default 0).
 * Relations: λ = 1 with one checkpoint returns it; λ = 0 returns the base; γ = 0 equals
 * task-arithmetic with λ/K (the soup of the checkpoints when λ = 1).
 */
import {deltaOperands} from '../numeric.js'
import {MergeInputError, type TensorMergeInput} from '../types.js'
import {beginBlock, BLOCK, deltaMerger} from './delta-method.js'

export interface DeltaOptions {
  granularity: 'element' | 'tensor'
  weighting: 'power' | 'softmax'
  gamma: number
  temperature: number
  lambda: number
  epsilon: number
}

export function resolveDeltaOptions(raw: Record<string, unknown>): DeltaOptions {
  const o: DeltaOptions = {
    granularity: (raw.granularity as DeltaOptions['granularity']) ?? 'element',
    weighting: (raw.weighting as DeltaOptions['weighting']) ?? 'power',
    gamma: (raw.gamma as number) ?? 1,
    temperature: (raw.temperature as number) ?? 1,
    lambda: (raw.lambda as number) ?? 1,
    epsilon: (raw.epsilon as number) ?? 0,
  }
  if (o.weighting === 'softmax' && raw.gamma !== undefined)
    throw new MergeInputError('delta options: "gamma" applies to weighting "power"; softmax uses "temperature"')
  if (o.weighting === 'power' && raw.temperature !== undefined)
    throw new MergeInputError('delta options: "temperature" applies to weighting "softmax"; power uses "gamma"')
  return o
}

/**
 * Fills `weights` (length K) from the magnitudes `a` (length K) whose maximum is `m`, per the
 * formulas above (exported for the tests); uniform when m <= ε.
 */
export function weightsFromMagnitudes(a: Float64Array, m: number, o: DeltaOptions, weights: Float64Array): void {
  const K = a.length
  if (!(m > o.epsilon) || !Number.isFinite(m)) {
    weights.fill(1 / K)
    return
  }
  let sum = 0
  if (o.weighting === 'softmax') {
    // a_k / m <= 1, so exp((a_k/m − 1)/T) <= 1: subtracting the max logit keeps it finite.
    const invT = 1 / o.temperature
    for (let k = 0; k < K; k++) sum += weights[k] = Math.exp((a[k]! / m - 1) * invT)
  } else if (o.gamma === 1) {
    for (let k = 0; k < K; k++) sum += weights[k] = a[k]! / m
  } else {
    for (let k = 0; k < K; k++) sum += weights[k] = Math.pow(a[k]! / m, o.gamma)
  }
  for (let k = 0; k < K; k++) weights[k]! /= sum
}

function mergeTensor(input: TensorMergeInput, out: Float32Array, o: DeltaOptions): number[] {
  const {base, cks, K, n} = deltaOperands(input, out)
  const lambda = o.lambda

  if (o.granularity === 'tensor') {
    const a = new Float64Array(K)
    const w = new Float64Array(K)
    for (let k = 0; k < K; k++) {
      const c = cks[k]!
      let ss = 0
      for (let i = 0; i < n; i++) {
        const d = c[i]! - base[i]!
        ss += d * d
      }
      a[k] = Math.sqrt(ss)
    }
    let m = 0
    for (let k = 0; k < K; k++) if (a[k]! > m) m = a[k]!
    weightsFromMagnitudes(a, m, o, w)
    const acc = new Float64Array(Math.min(BLOCK, n))
    for (let start = 0; start < n; start += BLOCK) {
      const len = beginBlock(n, start, [acc])
      for (let k = 0; k < K; k++) {
        const c = cks[k]!
        const wk = w[k]!
        for (let j = 0, i = start; j < len; j++, i++) acc[j]! += wk * (c[i]! - base[i]!)
      }
      for (let j = 0, i = start; j < len; j++, i++) out[i] = base[i]! + lambda * acc[j]!
    }
    return Array.from(w, (wk) => lambda * wk)
  }

  // Element granularity, block by block: (A) m = max_k |Δ_k|; (B) each checkpoint's score s_k
  // (uniform 1 where m <= ε) and their sum; (C) w_k = s_k / Σ s, accumulate w_k Δ_k and the
  // weight statistics.
  const B = Math.min(BLOCK, n)
  const m = new Float64Array(B)
  const den = new Float64Array(B)
  const acc = new Float64Array(B)
  const scores = new Float64Array(K * B)
  const sums = new Float64Array(K)
  const {epsilon, gamma} = o
  const softmax = o.weighting === 'softmax'
  const invT = 1 / o.temperature
  if (!softmax && gamma === 1 && epsilon === 0) {
    // The default (γ = 1, ε = 0) in two passes: θ* = θ_0 + λ Σ_k |Δ_k| Δ_k / Σ_j |Δ_j|.
    for (let start = 0; start < n; start += BLOCK) {
      const len = beginBlock(n, start, [den, acc])
      for (let k = 0; k < K; k++) {
        const c = cks[k]!
        for (let j = 0, i = start; j < len; j++, i++) {
          const d = c[i]! - base[i]!
          const a = d < 0 ? -d : d
          den[j]! += a
          acc[j]! += a * d
        }
      }
      for (let k = 0; k < K; k++) {
        const c = cks[k]!
        let wsum = 0
        for (let j = 0, i = start; j < len; j++, i++) {
          const dj = den[j]!
          if (dj === 0) wsum += 1 / K
          else {
            const d = c[i]! - base[i]!
            wsum += (d < 0 ? -d : d) / dj
          }
        }
        sums[k]! += wsum
      }
      for (let j = 0, i = start; j < len; j++, i++) {
        const dj = den[j]!
        out[i] = dj === 0 ? base[i]! : base[i]! + (lambda * acc[j]!) / dj
      }
    }
    return Array.from(sums, (s) => lambda * (n === 0 ? 1 / K : s / n))
  }
  for (let start = 0; start < n; start += BLOCK) {
    const len = beginBlock(n, start, [m, den, acc])
    for (let k = 0; k < K; k++) {
      const c = cks[k]!
      for (let j = 0, i = start; j < len; j++, i++) {
        const d = c[i]! - base[i]!
        const a = d < 0 ? -d : d
        if (a > m[j]!) m[j] = a
      }
    }
    for (let k = 0; k < K; k++) {
      const c = cks[k]!
      const off = k * B
      for (let j = 0, i = start; j < len; j++, i++) {
        const mj = m[j]!
        let score = 1
        if (mj > epsilon && mj !== Infinity) {
          const d = c[i]! - base[i]!
          const r = (d < 0 ? -d : d) / mj
          score = softmax ? Math.exp((r - 1) * invT) : gamma === 1 ? r : Math.pow(r, gamma)
        }
        scores[off + j] = score
        den[j]! += score
      }
    }
    for (let k = 0; k < K; k++) {
      const c = cks[k]!
      const off = k * B
      let wsum = 0
      for (let j = 0, i = start; j < len; j++, i++) {
        const w = scores[off + j]! / den[j]!
        acc[j]! += w * (c[i]! - base[i]!)
        wsum += w
      }
      sums[k]! += wsum
    }
    for (let j = 0, i = start; j < len; j++, i++) out[i] = base[i]! + lambda * acc[j]!
  }
  return Array.from(sums, (s) => lambda * (n === 0 ? 1 / K : s / n))
}

export default deltaMerger('delta', resolveDeltaOptions, mergeTensor)
