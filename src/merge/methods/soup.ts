/**
 * `soup` — a model soup (Wortsman et al., 2022): the weighted average of the checkpoints,
 *
 *     θ*(p) = Σ_k w_k θ_k(p),     w_k = 1/K by default, or the given `weights`
 *
 * Needs no base model (a base, if given, only supplies integer tensors). Given weights are divided
 * by their sum unless `normalize` is false. Relations: the soup of K identical checkpoints is that
 * checkpoint; with a base and weights summing to 1 it equals task-arithmetic with per-checkpoint λ_k = w_k.
 *
 * Options: weights (one number per checkpoint, default uniform), normalize (default true).
 * Weight statistic (merge.json): w_k.
 */
import {MergeInputError, type Merger, type TensorMergeInput} from '../types.js'

export interface SoupOptions {
  weights: number[]
}

export function resolveSoupOptions(raw: Record<string, unknown>, K: number): SoupOptions {
  const given = raw.weights as number[] | undefined
  if (!given) return {weights: new Array<number>(K).fill(1 / K)}
  if (given.length !== K)
    throw new MergeInputError(`soup options: /weights has ${given.length} numbers; expected one per checkpoint (${K})`)
  if (raw.normalize === false) return {weights: [...given]}
  const sum = given.reduce((s, x) => s + x, 0)
  if (!(sum > 0)) throw new MergeInputError(`soup options: /weights must sum to a positive number to be normalised, got sum ${sum}`)
  return {weights: given.map((x) => x / sum)}
}

function mergeTensor(input: TensorMergeInput, out: Float32Array, o: SoupOptions): number[] {
  const cks = input.checkpoints
  const K = cks.length
  const w = o.weights
  const n = out.length
  if (K === 2) {
    const a = cks[0]!, b = cks[1]!, wa = w[0]!, wb = w[1]!
    for (let i = 0; i < n; i++) out[i] = wa * a[i]! + wb * b[i]!
  } else {
    for (let i = 0; i < n; i++) {
      let acc = 0
      for (let k = 0; k < K; k++) acc += w[k]! * cks[k]![i]!
      out[i] = acc
    }
  }
  return [...w]
}

const soup: Merger<SoupOptions> = {
  name: 'soup',
  needsBase: false,
  minCheckpoints: 1,
  resolveOptions: resolveSoupOptions,
  mergeTensor,
}
export default soup
