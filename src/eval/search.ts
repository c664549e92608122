/**
 * Exact dense retrieval: every query is scored against every corpus vector with batched
 * query×corpus matrix products on the active tfjs backend, and a running top-k per query keeps
 * the best k documents seen so far.
 *
 * Memory is bounded by the chunking: the corpus arrives as chunks (e.g. read from the on-disk
 * embedding cache), one chunk and one score block of queryBatch × chunkSize floats live on the
 * backend at a time, and the host keeps only k (score, id) pairs per query. For 1M documents of
 * dimension 768 with 16k-document chunks, that is one 48 MiB chunk plus a 16 MiB score block.
 *
 * Similarity: `cosine` L2-normalises queries and documents first (so the product is the cosine),
 * `dot` uses raw inner products.
 */
import * as tf from '@tensorflow/tfjs-core'
import type {SearchProgressEvent} from '../core/events.js'

export type Similarity = 'cosine' | 'dot'

export interface CorpusChunk {
  /** Ids of the documents in this chunk, in row order. */
  ids: readonly string[]
  /** Row-major [ids.length × dim] vectors. */
  vectors: Float32Array
}

export interface SearchOptions {
  /** How many documents to keep per query (1..n). */
  k: number
  similarity?: Similarity
  /** Queries scored per matrix product (default 256). */
  queryBatchSize?: number
  /**
   * Skip a document whose id equals its query's id (MTEB's ignore_identical_ids), e.g. when the
   * queries are part of the corpus.
   */
  ignoreIdenticalIds?: boolean
  /** Per query, document ids never to return (e.g. known positives when mining negatives). */
  exclude?: ReadonlyArray<ReadonlySet<string> | undefined>
  /** Progress after each corpus chunk: documents searched so far. */
  onEvent?: (event: SearchProgressEvent) => void
}

/** The k best documents of one query, best first. */
export interface Hits {
  ids: string[]
  scores: number[]
}

/**
 * A bounded list of the best (score, id) pairs, kept sorted descending. `offer` returns false when
 * the candidate cannot enter, which lets callers stop scanning a descending candidate list early.
 */
export class RunningTopK {
  readonly ids: string[] = []
  readonly scores: number[] = []
  constructor(readonly k: number) {}

  get threshold(): number {
    return this.scores.length < this.k ? -Infinity : this.scores[this.scores.length - 1]
  }

  offer(score: number, id: string): boolean {
    if (this.scores.length >= this.k && !(score > this.scores[this.scores.length - 1])) return false
    let lo = 0
    let hi = this.scores.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.scores[mid] >= score) lo = mid + 1
      else hi = mid
    }
    this.scores.splice(lo, 0, score)
    this.ids.splice(lo, 0, id)
    if (this.scores.length > this.k) {
      this.scores.pop()
      this.ids.pop()
    }
    return true
  }
}

/**
 * The running top-k of every query in two flat typed arrays (nq × k scores and global document
 * indices): 8 bytes per kept hit, so 20k queries × k 1000 take 160 MB rather than millions of JS
 * objects. Row q holds `count[q]` hits sorted by score descending.
 */
export class TopKTable {
  readonly scores: Float32Array
  readonly docs: Int32Array
  readonly count: Int32Array
  constructor(
    readonly queries: number,
    readonly k: number,
  ) {
    this.scores = new Float32Array(queries * k)
    this.docs = new Int32Array(queries * k)
    this.count = new Int32Array(queries)
  }

  threshold(q: number): number {
    return this.count[q] < this.k ? -Infinity : this.scores[q * this.k + this.k - 1]
  }

  offer(q: number, score: number, doc: number): boolean {
    const k = this.k
    const base = q * k
    const n = this.count[q]
    if (n >= k && !(score > this.scores[base + k - 1])) return false
    let lo = 0
    let hi = n
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (this.scores[base + mid] >= score) lo = mid + 1
      else hi = mid
    }
    const end = Math.min(n, k - 1) // last index that shifts right by one
    this.scores.copyWithin(base + lo + 1, base + lo, base + end)
    this.docs.copyWithin(base + lo + 1, base + lo, base + end)
    this.scores[base + lo] = score
    this.docs[base + lo] = doc
    if (n < k) this.count[q] = n + 1
    return true
  }
}

function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12)) as tf.Tensor2D)
}

/**
 * Searches `corpus` (chunks, any iterable) for each of the `queryIds.length` queries whose vectors
 * are rows of `queries` ([nq × dim]). Returns the hits as a TopKTable of global document indices
 * (position in the corpus stream) and calls `onChunk` with each chunk's ids and start index so the
 * caller can keep only the ids it needs.
 */
export async function exactSearchTable(
  queries: Float32Array,
  queryIds: readonly string[],
  dim: number,
  corpus: Iterable<CorpusChunk> | AsyncIterable<CorpusChunk>,
  options: SearchOptions & {onChunk?: (ids: readonly string[], start: number) => void},
): Promise<TopKTable> {
  const nq = queryIds.length
  if (queries.length !== nq * dim) {
    throw new Error(`exactSearch: query matrix has ${queries.length} floats, expected ${nq} × ${dim}`)
  }
  if (!Number.isInteger(options.k) || options.k < 1) throw new Error(`exactSearch: k must be an integer >= 1, got ${options.k}`)
  const similarity = options.similarity ?? 'cosine'
  const queryBatch = Math.max(1, options.queryBatchSize ?? 256)
  const table = new TopKTable(nq, options.k)
  // per query, how many extra candidates a chunk must yield to survive exclusions
  const maxExtra = queryIds.reduce((m, _, i) => Math.max(m, (options.ignoreIdenticalIds ? 1 : 0) + (options.exclude?.[i]?.size ?? 0)), 0)

  const queryTensor = tf.tidy(() => {
    const q = tf.tensor2d(queries, [nq, dim])
    return similarity === 'cosine' ? l2Normalize(q) : q
  })
  let searched = 0
  try {
    for await (const chunk of corpus as AsyncIterable<CorpusChunk>) {
      const n = chunk.ids.length
      if (n === 0) continue
      if (chunk.vectors.length !== n * dim) {
        throw new Error(`exactSearch: corpus chunk has ${chunk.vectors.length} floats for ${n} documents of dimension ${dim}`)
      }
      options.onChunk?.(chunk.ids, searched)
      const docs = tf.tidy(() => {
        const d = tf.tensor2d(chunk.vectors, [n, dim])
        return similarity === 'cosine' ? l2Normalize(d) : d
      })
      const take = Math.min(n, options.k + maxExtra)
      try {
        for (let start = 0; start < nq; start += queryBatch) {
          const end = Math.min(nq, start + queryBatch)
          const {values, indices} = tf.tidy(() => {
            const qb = tf.slice(queryTensor, [start, 0], [end - start, dim])
            const scores = tf.matMul(qb, docs, false, true)
            return tf.topk(scores, take, true)
          })
          const [vals, idx] = await Promise.all([values.data() as Promise<Float32Array>, indices.data() as Promise<Int32Array>])
          values.dispose()
          indices.dispose()
          for (let qi = start; qi < end; qi++) {
            const qid = queryIds[qi]
            const excluded = options.exclude?.[qi]
            const row = (qi - start) * take
            for (let j = 0; j < take; j++) {
              const score = vals[row + j]
              if (!(score > table.threshold(qi))) break // descending: nothing further can enter
              const local = idx[row + j]
              if (options.ignoreIdenticalIds && chunk.ids[local] === qid) continue
              if (excluded?.has(chunk.ids[local])) continue
              table.offer(qi, score, searched + local)
            }
          }
        }
      } finally {
        docs.dispose()
      }
      searched += n
      options.onEvent?.({type: 'search-progress', done: searched})
    }
  } finally {
    queryTensor.dispose()
  }
  return table
}

/** exactSearch with document ids: the k best documents of each query, best first. */
export async function exactSearch(
  queries: Float32Array,
  queryIds: readonly string[],
  dim: number,
  corpus: Iterable<CorpusChunk> | AsyncIterable<CorpusChunk>,
  options: SearchOptions,
): Promise<Hits[]> {
  const chunks: {start: number; ids: readonly string[]}[] = []
  const table = await exactSearchTable(queries, queryIds, dim, corpus, {...options, onChunk: (ids, start) => chunks.push({start, ids})})
  const idOf = (doc: number) => {
    let lo = 0
    let hi = chunks.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (chunks[mid].start <= doc) lo = mid
      else hi = mid - 1
    }
    return chunks[lo].ids[doc - chunks[lo].start]
  }
  return queryIds.map((_, q) => {
    const n = table.count[q]
    const base = q * table.k
    return {ids: Array.from({length: n}, (_, j) => idOf(table.docs[base + j])), scores: Array.from(table.scores.subarray(base, base + n))}
  })
}

/** Splits an in-memory [n × dim] matrix into chunks of `chunkSize` rows. */
export function* chunkMatrix(ids: readonly string[], vectors: Float32Array, dim: number, chunkSize = 16384): Generator<CorpusChunk> {
  for (let start = 0; start < ids.length; start += chunkSize) {
    const end = Math.min(ids.length, start + chunkSize)
    yield {ids: ids.slice(start, end), vectors: vectors.subarray(start * dim, end * dim)}
  }
}

/** Concatenates equally sized vectors into one row-major matrix. */
export function stackVectors(rows: readonly Float32Array[], dim?: number): Float32Array {
  const d = dim ?? rows[0]?.length ?? 0
  const out = new Float32Array(rows.length * d)
  rows.forEach((r, i) => {
    if (r.length !== d) throw new Error(`vector ${i} has dimension ${r.length}, expected ${d}`)
    out.set(r, i * d)
  })
  return out
}
