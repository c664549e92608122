/**
 * Geometry of a representation space (`codiemb eval --geometry`), in float64:
 * - isotropy: mean cosine similarity of random pairs of sentence embeddings (0 for an isotropic
 *   space, near 1 when everything points the same way — the anisotropy problem);
 * - on token states (the last hidden layer, padding and special tokens excluded):
 *   mean pairwise token cosine (random pairs of tokens), and from the singular values σ of the
 *   centred token matrix: effective rank exp(H(σ/Σσ)) (Roy & Vetterli), SVD entropy H(σ²/Σσ²)
 *   (natural log), and the condition number σ_max/σ_min over σ > 1e-9·σ_max.
 * Singular values come from the eigenvalues of the d×d scatter matrix (cyclic Jacobi).
 */
import * as tf from '@tensorflow/tfjs-core'
import type {TokenBatch} from '../model/tokenizer/tokenizer.js'
import {Rng} from '../core/rng.js'

function cosineRows(m: Float32Array | Float64Array, dim: number, i: number, j: number): number {
  let dot = 0
  let a = 0
  let b = 0
  for (let k = 0; k < dim; k++) {
    const x = m[i * dim + k]
    const y = m[j * dim + k]
    dot += x * y
    a += x * x
    b += y * y
  }
  return a > 0 && b > 0 ? dot / Math.sqrt(a * b) : 0
}

/** Mean cosine of `pairs` random pairs of distinct rows. */
export function meanRandomPairCosine(rows: Float32Array | Float64Array, count: number, dim: number, pairs = 2000, seed = 1): number {
  if (count < 2) return Number.NaN
  const random = new Rng(seed)
  let sum = 0
  for (let p = 0; p < pairs; p++) {
    const i = random.int(count)
    let j = random.int(count - 1)
    if (j >= i) j++
    sum += cosineRows(rows, dim, i, j)
  }
  return sum / pairs
}

/** Eigenvalues of a symmetric matrix (row-major n×n, copied) by cyclic Jacobi rotations. */
export function symmetricEigenvalues(matrix: Float64Array, n: number, maxSweeps = 30): Float64Array {
  const a = Float64Array.from(matrix)
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0
    let total = 0
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      const v = a[i * n + j] * a[i * n + j]
      total += v
      if (i !== j) off += v
    }
    if (off <= 1e-22 * total || off === 0) break
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]
        if (Math.abs(apq) < 1e-300) continue
        const app = a[p * n + p]
        const aqq = a[q * n + q]
        const theta = (aqq - app) / (2 * apq)
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1))
        const c = 1 / Math.sqrt(t * t + 1)
        const s = t * c
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]
          const akq = a[k * n + q]
          a[k * n + p] = c * akp - s * akq
          a[k * n + q] = s * akp + c * akq
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]
          const aqk = a[q * n + k]
          a[p * n + k] = c * apk - s * aqk
          a[q * n + k] = s * apk + c * aqk
        }
      }
    }
  }
  return Float64Array.from({length: n}, (_, i) => a[i * n + i])
}

/** Singular values (descending) of the column-centred rows×dim matrix. */
export function centredSingularValues(rows: Float32Array | Float64Array, count: number, dim: number): number[] {
  const mean = new Float64Array(dim)
  for (let i = 0; i < count; i++) for (let k = 0; k < dim; k++) mean[k] += rows[i * dim + k] / count
  const scatter = new Float64Array(dim * dim)
  const x = new Float64Array(dim)
  for (let i = 0; i < count; i++) {
    for (let k = 0; k < dim; k++) x[k] = rows[i * dim + k] - mean[k]
    for (let p = 0; p < dim; p++) {
      const xp = x[p]
      if (xp === 0) continue
      for (let q = p; q < dim; q++) scatter[p * dim + q] += xp * x[q]
    }
  }
  for (let p = 0; p < dim; p++) for (let q = 0; q < p; q++) scatter[p * dim + q] = scatter[q * dim + p]
  return [...symmetricEigenvalues(scatter, dim)].map((e) => Math.sqrt(Math.max(e, 0))).sort((a, b) => b - a)
}

export interface SpectrumStats {
  effective_rank: number
  svd_entropy: number
  condition_number: number
}

export function spectrumStats(singularValues: number[]): SpectrumStats {
  const s = singularValues.filter((v) => v > 0)
  const sum = s.reduce((a, b) => a + b, 0)
  const sum2 = s.reduce((a, b) => a + b * b, 0)
  const h = (ps: number[]) => -ps.reduce((acc, p) => (p > 0 ? acc + p * Math.log(p) : acc), 0)
  const max = s[0] ?? 0
  const kept = s.filter((v) => v > 1e-9 * max)
  return {
    effective_rank: Math.exp(h(s.map((v) => v / sum))),
    svd_entropy: h(s.map((v) => (v * v) / sum2)),
    condition_number: kept.length ? max / kept[kept.length - 1] : Number.NaN,
  }
}

export interface Geometry extends Partial<SpectrumStats> {
  isotropy_mean_cosine: number
  token_mean_pairwise_cosine?: number
  tokens?: number
}

/** What token-level geometry needs from an encoder (codiemb's Encoder has it). */
export interface TokenStateEncoder {
  tokenize(texts: string[], options?: {maxLength?: number}): Promise<TokenBatch>
  forward(batch: TokenBatch, options?: {training?: boolean}): {lastHiddenState: tf.Tensor3D; hiddenStates: tf.Tensor3D[]}
  hiddenSize: number
}

export function hasTokenStates(encoder: object): encoder is TokenStateEncoder {
  const e = encoder as Partial<TokenStateEncoder>
  return typeof e.tokenize === 'function' && typeof e.forward === 'function' && typeof e.hiddenSize === 'number'
}

/** Token states (rows = non-padding, non-special tokens) of the last layer for `texts`. */
export async function tokenStates(encoder: TokenStateEncoder, texts: string[], maxLength: number): Promise<{rows: Float32Array; count: number}> {
  const batch = await encoder.tokenize(texts, {maxLength})
  const hidden = tf.tidy(() => {
    const out = encoder.forward(batch, {training: false})
    for (const h of out.hiddenStates) if (h !== out.lastHiddenState) h.dispose()
    return out.lastHiddenState
  })
  const values = (await hidden.data()) as Float32Array
  hidden.dispose()
  const mask = batch.attentionMask
  const special = batch.specialTokensMask
  const dim = encoder.hiddenSize
  const keep: number[] = []
  for (let i = 0; i < batch.batchSize * batch.seqLen; i++) if (mask[i] && !special[i]) keep.push(i)
  const rows = new Float32Array(keep.length * dim)
  keep.forEach((t, r) => rows.set(values.subarray(t * dim, (t + 1) * dim), r * dim))
  return {rows, count: keep.length}
}

export async function measureGeometry(
  embeddings: {rows: Float32Array; count: number; dim: number},
  tokenSource?: {encoder: TokenStateEncoder; texts: string[]; maxLength: number},
): Promise<Geometry> {
  const out: Geometry = {isotropy_mean_cosine: meanRandomPairCosine(embeddings.rows, embeddings.count, embeddings.dim)}
  if (tokenSource && tokenSource.texts.length) {
    const {rows, count} = await tokenStates(tokenSource.encoder, tokenSource.texts, tokenSource.maxLength)
    out.tokens = count
    out.token_mean_pairwise_cosine = meanRandomPairCosine(rows, count, tokenSource.encoder.hiddenSize)
    Object.assign(out, spectrumStats(centredSingularValues(rows, count, tokenSource.encoder.hiddenSize)))
  }
  return out
}
