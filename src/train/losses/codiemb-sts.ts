/**
 * `codiemb-sts` — CoDiEmb's STS objective: a weighted sum of the STS losses on one batch.
 *
 * Inputs: StsEmbeddings with final-layer (left/right) and middle-layer (leftMiddle/rightMiddle)
 * normalised embeddings and labels in [0,1].
 * Formula (paper weights): L = 1·mid-infonce + 0.5·pro + 2·pearson + 5·rank-kl, where pro, pearson
 * and rank-kl use the final-layer similarities s_i = left_i·right_i and mid-infonce the middle layer.
 * Options: weights {midInfonce, pro, pearson, rankKl, cosent} (a weight of 0 drops the term and,
 * for midInfonce, the middle-layer pooling); temperature (mid-infonce τ, 0.02); rankTemperature
 * (pro and rank-kl τ, 0.05); threshold (mid-infonce anchors, 1.0); scale (cosent λ, 20).
 * Relations: the trainer config can build any other combination per task as a list of
 * {name, weight, options}; this entry is the paper's default packaged as one loss.
 */
import * as tf from '@tensorflow/tfjs-core'
import {cosentLoss} from './cosent.js'
import {midInfoNceLoss} from './mid-infonce.js'
import {pearsonLoss} from './pearson.js'
import {proLoss} from './pro.js'
import {rankKlLoss} from './rank-kl.js'
import {middleLayer, pairSimilarities, stsLoss, zeroLoss} from './similarity.js'
import type {StsLoss} from './types.js'

export interface CodiembStsWeights {
  midInfonce?: number
  pro?: number
  pearson?: number
  rankKl?: number
  cosent?: number
}

/** The paper's STS weights: the defaults of this loss and, term by term, of `train.tasks.sts.losses`. */
export const PAPER_STS_WEIGHTS: Required<CodiembStsWeights> = {midInfonce: 1, pro: 0.5, pearson: 2, rankKl: 5, cosent: 0}

/** The registered loss each weight scales (this loss sums the same functions). */
export const STS_TERM_LOSSES: Record<keyof CodiembStsWeights, string> = {midInfonce: 'mid-infonce', pro: 'pro', pearson: 'pearson', rankKl: 'rank-kl', cosent: 'cosent'}

export interface CodiembStsOptions {
  weights?: CodiembStsWeights
  temperature?: number
  rankTemperature?: number
  threshold?: number
  scale?: number
}

export function create(options: CodiembStsOptions = {}): StsLoss {
  const weights = {...PAPER_STS_WEIGHTS, ...options.weights}
  const temperature = options.temperature ?? 0.02
  const rankTemperature = options.rankTemperature ?? 0.05
  const threshold = options.threshold ?? 1.0
  const scale = options.scale ?? 20
  return stsLoss('codiemb-sts', weights.midInfonce !== 0, (batch) => {
    const s = pairSimilarities(batch.left, batch.right)
    const terms: tf.Scalar[] = []
    if (weights.midInfonce) {
      const middle = middleLayer(batch, 'codiemb-sts')
      terms.push(tf.mul(midInfoNceLoss(middle.left, middle.right, batch.labels, temperature, threshold), weights.midInfonce))
    }
    if (weights.pro) terms.push(tf.mul(proLoss(s, batch.labels, rankTemperature), weights.pro))
    if (weights.pearson) terms.push(tf.mul(pearsonLoss(s, batch.labels), weights.pearson))
    if (weights.rankKl) terms.push(tf.mul(rankKlLoss(s, batch.labels, rankTemperature), weights.rankKl))
    if (weights.cosent) terms.push(tf.mul(cosentLoss(s, batch.labels, scale), weights.cosent))
    return terms.length ? (tf.addN(terms) as tf.Scalar) : zeroLoss(s)
  })
}
