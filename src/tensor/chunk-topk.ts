/**
 * The running top-k of exact dense search (src/eval/search.ts), one corpus chunk at a time: every
 * query is scored against the chunk (query batch × chunk matrix products), the chunk's best `keep`
 * documents per query are merged with the best seen so far, and only those `keep` (score, global
 * document index) pairs per query stay between chunks, on the backend's device. Read back once.
 *
 * Two implementations of the same computation (same normalisation, products, topk and merge order):
 * - `torch` backend: one native call per chunk (native/src/search.cc). The chunk is read in place
 *   from its Float32Array (copied once to the GPU on CUDA), normalised as F.normalize does into one
 *   buffer reused across chunks, each batch's scores go into one reused buffer, and topk + concat + topk + gather run without a
 *   JavaScript hop between ATen calls. The tfjs-op form below cost 1.3–1.5× PyTorch's time for the
 *   same work (upload copy, square/sum/rsqrt/mul normalisation with two chunk-sized temporaries, one
 *   tfjs record and int32↔int64 cast per op).
 * - every other backend (and torch with `native: false`): tfjs ops — topk of the score block,
 *   concat with the running top-k, topk of that and a gather of the matching indices.
 *
 * Scores are cosines (rows L2-normalised first) or raw inner products; ties are kept in the order
 * topk returns them.
 */
import * as tf from '@tensorflow/tfjs-core'
import type {TorchAddon, TorchHandle} from './torch/addon.js'

export interface ChunkTopKOptions {
  /** Row-major [nq × dim] query vectors. */
  queries: Float32Array
  nq: number
  dim: number
  /** Candidates kept per query (k plus what exclusions may remove). */
  keep: number
  /** Queries scored per matrix product. */
  queryBatch: number
  /** Normalise rows first (cosine) or not (dot). */
  cosine: boolean
  /** Use the torch backend's native call when it is active (default true); false forces the tfjs ops. */
  native?: boolean
}

/** One query batch's running top-k as read back: `rows` queries × `kept` hits, best first. */
export interface TopKBatch {
  rows: number
  kept: number
  scores: Float32Array
  /** Global document indices (position in the corpus stream). */
  docs: Int32Array
}

export interface ChunkTopK {
  /** Which implementation runs: `native` (torch addon) or `tfjs` (tfjs ops on the active backend). */
  readonly kind: 'native' | 'tfjs'
  /** Scores the chunk ([n × dim] rows, documents offset..offset+n-1) and merges it into the running top-k. */
  add(vectors: Float32Array, n: number, offset: number): void
  /** The running top-k of every query batch, read back from the device. */
  read(): Promise<TopKBatch[]>
  /** Frees the device tensors (queries, running top-k). */
  dispose(): void
}

/** The running top-k on the active backend: native on torch (when its addon has it), else tfjs ops. */
export function chunkTopK(options: ChunkTopKOptions): ChunkTopK {
  const addon = options.native === false ? undefined : torchSearchAddon()
  return addon ? new NativeChunkTopK(addon.addon, addon.device, options) : new TfjsChunkTopK(options)
}

/** The torch backend's addon when it is active and exports the search calls (an addon built before them does not). */
function torchSearchAddon(): {addon: TorchAddon; device: string | undefined} | undefined {
  if (tf.getBackend() !== 'torch') return undefined
  const backend = tf.backend() as unknown as {addon?: TorchAddon; device?: string}
  if (typeof backend.addon?.searchChunk !== 'function') return undefined
  return {addon: backend.addon, device: backend.device && backend.device !== 'cpu' ? backend.device : undefined}
}

class NativeChunkTopK implements ChunkTopK {
  readonly kind = 'native'
  private readonly queries: TorchHandle
  private running: TorchHandle[] = []
  private workspace: TorchHandle | undefined
  private workspaceRows = 0

  constructor(
    private readonly addon: TorchAddon,
    private readonly device: string | undefined,
    private readonly o: ChunkTopKOptions,
  ) {
    this.queries = addon.searchQueries(o.queries, o.nq, o.dim, o.cosine, device)
  }

  add(vectors: Float32Array, n: number, offset: number): void {
    // one buffer for every chunk's normalised (or device) copy, sized by the largest chunk so far
    if (this.workspaceRows < n && (this.o.cosine || this.device)) {
      if (this.workspace) this.addon.release(this.workspace)
      this.workspace = this.addon.op('aten::empty', 'memory_format')([n, this.o.dim], 'float32', null, this.device ?? 'cpu') as TorchHandle
      this.workspaceRows = n
    }
    const next = this.addon.searchChunk(
      this.queries, vectors, n, this.o.dim, offset, this.o.keep, this.o.queryBatch, this.o.cosine, this.running, this.workspace,
    )
    for (const h of this.running) this.addon.release(h)
    this.running = next
  }

  async read(): Promise<TopKBatch[]> {
    const out: TopKBatch[] = []
    for (let b = 0; b < this.running.length; b += 2) {
      const [rows, kept] = this.addon.shape(this.running[b]!) as [number, number]
      out.push({rows, kept, scores: this.addon.toArray(this.running[b]!) as Float32Array, docs: this.addon.toArray(this.running[b + 1]!) as Int32Array})
    }
    return out
  }

  dispose(): void {
    for (const h of [this.queries, ...this.running, ...(this.workspace ? [this.workspace] : [])]) this.addon.release(h)
    this.running = []
    this.workspace = undefined
  }
}

/**
 * Rows scaled to unit length (a zero row stays zero). Written as square, row sum, rsqrt and one
 * product rather than tf.norm, which computes |x|^2 through abs and pow (slow on native backends).
 */
function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.mul(x, tf.rsqrt(tf.maximum(tf.sum(tf.square(x), 1, true), 1e-24))) as tf.Tensor2D)
}

class TfjsChunkTopK implements ChunkTopK {
  readonly kind = 'tfjs'
  private readonly queries: tf.Tensor2D
  /** Per query batch: its running top scores [b × kept] and global document indices (int32). */
  private running: {scores: tf.Tensor2D; docs: tf.Tensor2D}[] = []

  constructor(private readonly o: ChunkTopKOptions) {
    this.queries = tf.tidy(() => {
      const q = tf.tensor2d(o.queries, [o.nq, o.dim])
      return o.cosine ? l2Normalize(q) : q
    })
  }

  add(vectors: Float32Array, n: number, offset: number): void {
    const {dim, keep, queryBatch, nq} = this.o
    const docs = tf.tidy(() => {
      const d = tf.tensor2d(vectors, [n, dim])
      return this.o.cosine ? l2Normalize(d) : d
    })
    const take = Math.min(n, keep)
    try {
      for (let b = 0, start = 0; start < nq; b++, start += queryBatch) {
        const end = Math.min(nq, start + queryBatch)
        const next = tf.tidy(() => {
          const qb = tf.slice(this.queries, [start, 0], [end - start, dim])
          const top = tf.topk(tf.matMul(qb, docs, false, true), take, true)
          const ids = tf.add(top.indices, tf.scalar(offset, 'int32')) as tf.Tensor2D
          const prev = this.running[b]
          if (!prev) return {scores: top.values as tf.Tensor2D, docs: ids}
          const scores = tf.concat([prev.scores, top.values as tf.Tensor2D], 1)
          const merged = tf.topk(scores, Math.min(keep, scores.shape[1]), true)
          return {scores: merged.values as tf.Tensor2D, docs: tf.gather(tf.concat([prev.docs, ids], 1), merged.indices, 1, 1) as tf.Tensor2D}
        })
        this.running[b]?.scores.dispose()
        this.running[b]?.docs.dispose()
        this.running[b] = next
      }
    } finally {
      docs.dispose()
    }
  }

  async read(): Promise<TopKBatch[]> {
    const out: TopKBatch[] = []
    for (const {scores, docs} of this.running) {
      const [rows, kept] = scores.shape
      out.push({rows, kept, scores: (await scores.data()) as Float32Array, docs: (await docs.data()) as Int32Array})
    }
    return out
  }

  dispose(): void {
    this.queries.dispose()
    for (const r of this.running) {
      r.scores.dispose()
      r.docs.dispose()
    }
    this.running = []
  }
}
