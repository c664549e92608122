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
  /** Called after each corpus chunk with the number of documents searched so far. */
  onProgress?: (documentsSearched: number) => void
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
    // binary search for the first position whose score is lower than the candidate
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

function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.div(x, tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12)) as tf.Tensor2D)
}

/**
 * Searches `corpus` (chunks, any iterable) for each of the `queryIds.length` queries whose vectors
 * are rows of `queries` ([nq × dim]). Returns the hits per query in query order.
 */
export async function exactSearch(
  queries: Float32Array,
  queryIds: readonly string[],
  dim: number,
  corpus: Iterable<CorpusChunk> | AsyncIterable<CorpusChunk>,
  options: SearchOptions,
): Promise<Hits[]> {
  const nq = queryIds.length
  if (queries.length !== nq * dim) {
    throw new Error(`exactSearch: query matrix has ${queries.length} floats, expected ${nq} × ${dim}`)
  }
  if (!Number.isInteger(options.k) || options.k < 1) throw new Error(`exactSearch: k must be an integer >= 1, got ${options.k}`)
  const similarity = options.similarity ?? 'cosine'
  const queryBatch = Math.max(1, options.queryBatchSize ?? 256)
  const lists = Array.from({length: nq}, () => new RunningTopK(options.k))
  // per query, how many extra candidates a chunk must yield to survive exclusions
  const extra = queryIds.map((qid, i) => (options.ignoreIdenticalIds ? 1 : 0) + (options.exclude?.[i]?.size ?? 0))
  const maxExtra = extra.reduce((a, b) => Math.max(a, b), 0)

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
            const list = lists[qi]
            const qid = queryIds[qi]
            const excluded = options.exclude?.[qi]
            const row = (qi - start) * take
            for (let j = 0; j < take; j++) {
              const score = vals[row + j]
              if (!(score > list.threshold)) break // descending: nothing further can enter
              const id = chunk.ids[idx[row + j]]
              if (options.ignoreIdenticalIds && id === qid) continue
              if (excluded?.has(id)) continue
              list.offer(score, id)
            }
          }
        }
      } finally {
        docs.dispose()
      }
      searched += n
      options.onProgress?.(searched)
    }
  } finally {
    queryTensor.dispose()
  }
  return lists.map((l) => ({ids: l.ids, scores: l.scores}))
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
