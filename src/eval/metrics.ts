/**
 * Evaluation metrics, computed in float64.
 *
 * Retrieval metrics follow trec_eval (as wrapped by pytrec_eval, which MTEB uses):
 * - a run is, per query, a map doc id -> score; it is ranked by score descending, ties broken by
 *   doc id descending (trec_eval compares doc numbers with strcmp and keeps the larger first);
 * - a document is relevant when its qrels grade is >= 1; R = number of relevant documents in the
 *   qrels (judged documents absent from the run still count, so recall and MAP can stay below 1);
 * - queries whose qrels hold no relevant document are skipped, and so are queries absent from the
 *   run (trec_eval without -c); the reported value is the mean over the evaluated queries;
 * - ndcg@k:   DCG@k / IDCG@k with gain = grade and discount 1/log2(rank + 1); the ideal ranking
 *   sorts every judged grade of the query (trec_eval's ndcg_cut);
 * - map@k:    sum of precision@i over ranks i <= k that hold a relevant document, divided by R;
 * - recall@k: relevant documents in the top k / R;
 * - precision@k: relevant documents in the top k / k (k, not the number retrieved);
 * - mrr@k:    1 / rank of the first relevant document within the top k, else 0 (MTEB's own MRR).
 *
 * STS metrics: Pearson's r and Spearman's rho (Pearson of average ranks, so ties get the mean of
 * the ranks they span), as scipy.stats computes them.
 */

export const DEFAULT_CUTOFFS = [1, 3, 5, 10, 20, 100, 1000] as const
export const RETRIEVAL_MEASURES = ['ndcg', 'map', 'recall', 'precision', 'mrr'] as const
export type RetrievalMeasure = (typeof RETRIEVAL_MEASURES)[number]

/** query id -> doc id -> score */
export type Run = Record<string, Record<string, number>>
/** query id -> doc id -> relevance grade */
export type Qrels = Record<string, Record<string, number>>

export interface RetrievalMetricsResult {
  /** `${measure}_at_${k}` -> mean over evaluated queries (MTEB key names). */
  scores: Record<string, number>
  /** How many queries were averaged. */
  evaluatedQueries: number
  /** Per-query values, same keys as scores. */
  perQuery: Record<string, Record<string, number>>
}

/** Ranks a query's run trec_eval style: score descending, then doc id descending. */
export function rankDocuments(docScores: Record<string, number>): string[] {
  return Object.keys(docScores).sort((a, b) => {
    const d = docScores[b] - docScores[a]
    if (d !== 0) return d
    return a < b ? 1 : a > b ? -1 : 0
  })
}

/** Scores one ranked list for every measure and cutoff. */
export function scoreRankedList(
  ranked: readonly string[],
  judged: Record<string, number>,
  cutoffs: readonly number[] = DEFAULT_CUTOFFS,
): Record<string, number> {
  const grades = Object.values(judged)
  const totalRelevant = grades.filter((g) => g >= 1).length
  const idealGains = grades.filter((g) => g > 0).sort((a, b) => b - a)
  const maxK = Math.max(...cutoffs)
  // prefix sums along the ranking
  const depth = Math.min(ranked.length, maxK)
  const dcgPrefix = new Float64Array(depth + 1)
  const relPrefix = new Float64Array(depth + 1)
  const apPrefix = new Float64Array(depth + 1)
  let firstRelevantRank = 0
  for (let i = 0; i < depth; i++) {
    const grade = judged[ranked[i]] ?? 0
    const relevant = grade >= 1
    dcgPrefix[i + 1] = dcgPrefix[i] + (grade > 0 ? grade / Math.log2(i + 2) : 0)
    relPrefix[i + 1] = relPrefix[i] + (relevant ? 1 : 0)
    apPrefix[i + 1] = apPrefix[i] + (relevant ? relPrefix[i + 1] / (i + 1) : 0)
    if (relevant && firstRelevantRank === 0) firstRelevantRank = i + 1
  }
  const out: Record<string, number> = {}
  for (const k of cutoffs) {
    const d = Math.min(k, depth)
    let idcg = 0
    for (let i = 0; i < Math.min(k, idealGains.length); i++) idcg += idealGains[i] / Math.log2(i + 2)
    out[`ndcg_at_${k}`] = idcg > 0 ? dcgPrefix[d] / idcg : 0
    out[`map_at_${k}`] = totalRelevant > 0 ? apPrefix[d] / totalRelevant : 0
    out[`recall_at_${k}`] = totalRelevant > 0 ? relPrefix[d] / totalRelevant : 0
    out[`precision_at_${k}`] = relPrefix[d] / k
    out[`mrr_at_${k}`] = firstRelevantRank > 0 && firstRelevantRank <= k ? 1 / firstRelevantRank : 0
  }
  return out
}

/**
 * Mean retrieval metrics, one query at a time (so a caller never needs the whole run in memory).
 * Queries without a relevant document are skipped.
 */
export class RetrievalMetricsAccumulator {
  private readonly keys: string[]
  private readonly sums: Record<string, number>
  private n = 0
  readonly perQuery: Record<string, Record<string, number>> = {}
  constructor(
    readonly cutoffs: readonly number[] = DEFAULT_CUTOFFS,
    readonly keepPerQuery = false,
  ) {
    this.keys = RETRIEVAL_MEASURES.flatMap((m) => cutoffs.map((k) => `${m}_at_${k}`))
    this.sums = Object.fromEntries(this.keys.map((k) => [k, 0]))
  }

  /** Adds a query's ranking (best first, ties already broken). Returns false when the query is skipped. */
  add(queryId: string, ranked: readonly string[], judged: Record<string, number> | undefined): boolean {
    if (!judged || !Object.values(judged).some((g) => g >= 1)) return false
    const scores = scoreRankedList(ranked, judged, this.cutoffs)
    if (this.keepPerQuery) this.perQuery[queryId] = scores
    for (const k of this.keys) this.sums[k] += scores[k]
    this.n++
    return true
  }

  result(): RetrievalMetricsResult {
    const scores: Record<string, number> = {}
    for (const k of this.keys) scores[k] = this.n > 0 ? this.sums[k] / this.n : 0
    return {scores, evaluatedQueries: this.n, perQuery: this.perQuery}
  }
}

/**
 * Mean retrieval metrics over the queries that have at least one relevant document and appear in
 * the run. `ignoreIdenticalIds` drops a retrieved document whose id equals the query id (MTEB does
 * this for corpora that contain the queries themselves).
 */
export function retrievalMetrics(
  run: Run,
  qrels: Qrels,
  options: {cutoffs?: readonly number[]; ignoreIdenticalIds?: boolean} = {},
): RetrievalMetricsResult {
  const acc = new RetrievalMetricsAccumulator(options.cutoffs ?? DEFAULT_CUTOFFS, true)
  for (const [queryId, judged] of Object.entries(qrels)) {
    const docScores = run[queryId]
    if (!docScores) continue
    let ranked = rankDocuments(docScores)
    if (options.ignoreIdenticalIds) ranked = ranked.filter((d) => d !== queryId)
    acc.add(queryId, ranked, judged)
  }
  return acc.result()
}

/**
 * Pearson's correlation coefficient (float64), as scipy.stats.pearsonr computes it: the dot product
 * of the centred vectors each divided by its norm, clipped to [-1, 1]. NaN when either input is constant.
 */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length
  if (n !== y.length) throw new Error(`pearson: lengths differ (${n} vs ${y.length})`)
  if (n < 2) return Number.NaN
  let mx = 0
  let my = 0
  for (let i = 0; i < n; i++) {
    mx += x[i]
    my += y[i]
  }
  mx /= n
  my /= n
  let sxx = 0
  let syy = 0
  for (let i = 0; i < n; i++) {
    sxx += (x[i] - mx) ** 2
    syy += (y[i] - my) ** 2
  }
  const nx = Math.sqrt(sxx)
  const ny = Math.sqrt(syy)
  if (!(nx > 0) || !(ny > 0)) return Number.NaN
  let r = 0
  for (let i = 0; i < n; i++) r += ((x[i] - mx) / nx) * ((y[i] - my) / ny)
  return Math.max(-1, Math.min(1, r))
}

/** 1-based ranks with ties given the average of the ranks they occupy. */
export function averageRanks(values: ArrayLike<number>): Float64Array {
  const n = values.length
  const order = Array.from({length: n}, (_, i) => i).sort((a, b) => values[a] - values[b])
  const ranks = new Float64Array(n)
  let i = 0
  while (i < n) {
    let j = i
    while (j + 1 < n && values[order[j + 1]] === values[order[i]]) j++
    const avg = (i + j) / 2 + 1
    for (let t = i; t <= j; t++) ranks[order[t]] = avg
    i = j + 1
  }
  return ranks
}

/** Spearman's rank correlation (Pearson of average ranks). */
export function spearman(x: ArrayLike<number>, y: ArrayLike<number>): number {
  return pearson(averageRanks(x), averageRanks(y))
}

export interface StsScores {
  cosine_pearson: number
  cosine_spearman: number
  euclidean_pearson: number
  euclidean_spearman: number
  manhattan_pearson: number
  manhattan_spearman: number
  pearson: number
  spearman: number
}

/**
 * The cosine of each pair as MTEB 1.39.7 scores it: 1 - scikit-learn's paired_cosine_distances, i.e.
 * both rows L2-normalised (a zero row stays zero, as sklearn.preprocessing.normalize leaves it), then
 * 1 - 0.5 * ||x/||x|| - y/||y||||^2. Identical vectors therefore score exactly 1.0 (their difference
 * is exactly zero), which a dot product over the norms does not guarantee (1 +- 1 ulp), and ties
 * between such pairs stay ties for Spearman. Computed in float64 from the float32 embeddings, on
 * the CPU in JavaScript whatever the tensor backend, so the same embeddings score the same
 * everywhere (scikit-learn would stay in float32 for two float32 arrays; float64 is the
 * deterministic choice and matches a float64 numpy computation to ~1e-16).
 */
export function pairedCosine(a: readonly Float32Array[], b: readonly Float32Array[]): Float64Array {
  const n = a.length
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const u = a[i]
    const v = b[i]
    let nu = 0
    let nv = 0
    for (let d = 0; d < u.length; d++) {
      nu += u[d] * u[d]
      nv += v[d] * v[d]
    }
    const su = nu > 0 ? Math.sqrt(nu) : 1
    const sv = nv > 0 ? Math.sqrt(nv) : 1
    let sq = 0
    for (let d = 0; d < u.length; d++) {
      const diff = u[d] / su - v[d] / sv
      sq += diff * diff
    }
    out[i] = 1 - 0.5 * sq
  }
  return out
}

/**
 * STS scores of embedding pairs against gold scores, as MTEB 1.39.7's STSEvaluator computes them:
 * cosine as `pairedCosine`, and negated Euclidean and Manhattan distances of the raw embeddings (so
 * that larger means more similar); Pearson as scipy.stats.pearsonr, Spearman as scipy.stats.spearmanr
 * (Pearson of average ranks). `pearson`/`spearman` repeat the cosine values (the similarity the
 * encoders use). The gold scores need no normalisation: MTEB's (x - min) / (max - min) is affine and
 * increasing, so it changes neither correlation.
 */
export function stsScores(a: readonly Float32Array[], b: readonly Float32Array[], gold: ArrayLike<number>): StsScores {
  const n = a.length
  if (b.length !== n || gold.length !== n) throw new Error(`stsScores: ${n} left, ${b.length} right, ${gold.length} gold scores`)
  const cos = pairedCosine(a, b)
  const euc = new Float64Array(n)
  const man = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const u = a[i]
    const v = b[i]
    let sq = 0
    let abs = 0
    for (let d = 0; d < u.length; d++) {
      const diff = u[d] - v[d]
      sq += diff * diff
      abs += Math.abs(diff)
    }
    euc[i] = -Math.sqrt(sq)
    man[i] = -abs
  }
  const cosine_pearson = pearson(cos, gold)
  const cosine_spearman = spearman(cos, gold)
  return {
    cosine_pearson,
    cosine_spearman,
    euclidean_pearson: pearson(euc, gold),
    euclidean_spearman: spearman(euc, gold),
    manhattan_pearson: pearson(man, gold),
    manhattan_spearman: spearman(man, gold),
    pearson: cosine_pearson,
    spearman: cosine_spearman,
  }
}
