/**
 * Exact dense retrieval: every query is scored against every corpus vector with batched
 * query×corpus matrix products on the active tfjs backend, and a running top-k per query, kept on
 * the backend's device and merged there chunk by chunk, holds the best k documents seen so far.
 *
 * Memory is bounded by the chunking: the corpus arrives as chunks (e.g. read from the on-disk
 * embedding cache), one chunk and one score block of queryBatch × chunkSize floats live on the
 * backend at a time, plus k (score, index) pairs per query (the running top-k, on the backend). For
 * 1M documents of dimension 768 with 16k-document chunks, that is one 48 MiB chunk plus a 16 MiB
 * score block.
 *
 * Similarity: `cosine` L2-normalises queries and documents first (so the product is the cosine),
 * `dot` uses raw inner products.
 */
import {chunkTopK} from '../tensor/chunk-topk.js'
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
  /** The torch backend's native chunk search when it is active (default true); false forces tfjs ops (comparisons). */
  native?: boolean
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

/**
 * Searches `corpus` (chunks, any iterable) for each of the `queryIds.length` queries whose vectors
 * are rows of `queries` ([nq × dim]). Returns the hits as a TopKTable of global document indices
 * (position in the corpus stream) and calls `onChunk` with each chunk's ids and start index so the
 * caller can keep only the ids it needs.
 *
 * The running top-k stays on the backend's device (on CUDA: on the GPU, with the corpus chunk) and is
 * merged there chunk by chunk (src/tensor/chunk-topk.ts: one native call per chunk on torch, tfjs ops
 * elsewhere). No JavaScript loop touches a candidate until the end, when the final table is read back
 * once. Exclusions (ignoreIdenticalIds, `exclude`) are applied then: the device keeps k + (the most
 * documents any query may exclude) candidates, which always hold the k best allowed ones.
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
  // per query, how many candidates exclusions may remove: the device keeps that many more
  const extraOf = (i: number) => (options.ignoreIdenticalIds ? 1 : 0) + (options.exclude?.[i]?.size ?? 0)
  const maxExtra = queryIds.reduce((m, _, i) => Math.max(m, extraOf(i)), 0)
  const keep = options.k + maxExtra
  // the chunk ids, to resolve excluded documents at the end (only when there are exclusions)
  const chunkIds: {start: number; ids: readonly string[]}[] = []
  const running = chunkTopK({queries, nq, dim, keep, queryBatch, cosine: similarity === 'cosine', native: options.native})
  let searched = 0
  try {
    for await (const chunk of corpus as AsyncIterable<CorpusChunk>) {
      const n = chunk.ids.length
      if (n === 0) continue
      if (chunk.vectors.length !== n * dim) {
        throw new Error(`exactSearch: corpus chunk has ${chunk.vectors.length} floats for ${n} documents of dimension ${dim}`)
      }
      options.onChunk?.(chunk.ids, searched)
      if (maxExtra) chunkIds.push({start: searched, ids: chunk.ids})
      running.add(chunk.vectors, n, searched)
      searched += n
      options.onEvent?.({type: 'search-progress', done: searched})
    }
    // read the final top-k back once, batch by batch
    const idOf = maxExtra ? chunkLookup(chunkIds) : undefined
    const batches = await running.read()
    for (let b = 0; b < batches.length; b++) {
      const {rows, kept, scores: vals, docs: idx} = batches[b]
      for (let row = 0; row < rows; row++) {
        const q = b * queryBatch + row
        const from = row * kept
        if (!idOf || extraOf(q) === 0) {
          const n = Math.min(options.k, kept)
          table.scores.set(vals.subarray(from, from + n), q * options.k)
          table.docs.set(idx.subarray(from, from + n), q * options.k)
          table.count[q] = n
          continue
        }
        const excluded = options.exclude?.[q]
        let n = 0
        for (let j = 0; j < kept && n < options.k; j++) {
          const id = idOf(idx[from + j])
          if ((options.ignoreIdenticalIds && id === queryIds[q]) || excluded?.has(id)) continue
          table.scores[q * options.k + n] = vals[from + j]
          table.docs[q * options.k + n] = idx[from + j]
          n++
        }
        table.count[q] = n
      }
    }
  } finally {
    running.dispose()
  }
  return table
}

/** Document id by global index, from the chunks' start positions and ids. */
function chunkLookup(chunks: readonly {start: number; ids: readonly string[]}[]): (doc: number) => string {
  return (doc) => {
    let lo = 0
    let hi = chunks.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (chunks[mid].start <= doc) lo = mid
      else hi = mid - 1
    }
    return chunks[lo].ids[doc - chunks[lo].start]
  }
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
  const idOf = chunkLookup(chunks)
  // plain loops into preallocated arrays: Array.from with a callback took 4× as long (0.2 s for 1,024 × 1,000 hits)
  return queryIds.map((_, q) => {
    const n = table.count[q]
    const base = q * table.k
    const ids = new Array<string>(n)
    const scores = new Array<number>(n)
    for (let j = 0; j < n; j++) {
      ids[j] = idOf(table.docs[base + j])
      scores[j] = table.scores[base + j]
    }
    return {ids, scores}
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
