/**
 * Embeddings of evaluation texts, computed in slices and kept either in memory or in an on-disk
 * cache so that re-running an evaluation (or evaluating a merge that left the model unchanged)
 * does not re-encode anything.
 *
 * A cache entry is keyed by the model fingerprint, task, split, role (queries/corpus/text1/...),
 * the prompt (its suffix too), the max length, and a hash of the texts themselves (so edited data never
 * reuses stale vectors). On disk an entry is `<key>.f32` (row-major little-endian float32) plus
 * `<key>.json` (count, dim, the key fields); both are written atomically (src/core/fs-atomic.ts),
 * so an interrupted run leaves no half entry behind, only a temporary that the next run removes.
 */
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync} from 'node:fs'
import {open, readFile} from 'node:fs/promises'
import {join} from 'node:path'
import type {EncodeProgressEvent} from '../core/events.js'
import {AtomicFile, processAlive, removeTemps, writeFileAtomic} from '../core/fs-atomic.js'
import type {CorpusChunk} from './search.js'
import type {ShardGroup} from '../tensor/shards.js'
import {TextHasher, textSource, type TextSource} from './text-source.js'

export interface EmbeddingKey {
  model: string
  task: string
  split: string
  role: string
  /** What the prompt puts before each text (see src/core/prompts.ts). */
  prompt: string
  /** What the prompt puts after each text; absent when nothing, so prefix-only keys stay as they were. */
  promptSuffix?: string
  maxLength: number
}

/** Something that turns a slice of texts into vectors (an encoder's encode, bound to its options). */
export type EncodeSlice = (texts: string[]) => Promise<Float32Array[]>

/** Embeddings of n texts: readable whole or chunk by chunk. */
export interface EmbeddingMatrix {
  count: number
  dim: number
  /** True when the vectors came from the cache rather than the encoder. */
  fromCache: boolean
  /** All rows as one [count × dim] array (loads the file when on disk). */
  readAll(): Promise<Float32Array>
  /** Consecutive rows, `rows` at a time, paired with `ids`. Reads from disk incrementally. */
  chunks(ids: readonly string[], rows?: number): AsyncGenerator<CorpusChunk>
}

/** The texts' digest in cache keys (a TextSource's `hash()` streams the same). */
export function hashTexts(texts: readonly string[]): string {
  return new TextHasher().update(texts).digest()
}

export function cacheKey(key: EmbeddingKey, textsHash: string): string {
  const h = createHash('sha256')
  const fields = [key.model, key.task, key.split, key.role, key.prompt, key.maxLength, textsHash]
  if (key.promptSuffix) fields.push(key.promptSuffix)
  h.update(JSON.stringify(fields))
  return h.digest('hex').slice(0, 40)
}

class MemoryMatrix implements EmbeddingMatrix {
  fromCache = false
  constructor(
    readonly data: Float32Array,
    readonly count: number,
    readonly dim: number,
  ) {}
  async readAll(): Promise<Float32Array> {
    return this.data
  }
  async *chunks(ids: readonly string[], rows = 16384): AsyncGenerator<CorpusChunk> {
    for (let s = 0; s < this.count; s += rows) {
      const e = Math.min(this.count, s + rows)
      yield {ids: ids.slice(s, e), vectors: this.data.subarray(s * this.dim, e * this.dim)}
    }
  }
}

class FileMatrix implements EmbeddingMatrix {
  constructor(
    readonly path: string,
    readonly count: number,
    readonly dim: number,
    readonly fromCache: boolean,
  ) {}
  async readAll(): Promise<Float32Array> {
    const buf = await readFile(this.path)
    return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength))
  }
  async *chunks(ids: readonly string[], rows = 16384): AsyncGenerator<CorpusChunk> {
    if (ids.length !== this.count) throw new Error(`embedding cache ${this.path}: ${this.count} vectors but ${ids.length} ids`)
    const fh = await open(this.path, 'r')
    try {
      for (let s = 0; s < this.count; s += rows) {
        const e = Math.min(this.count, s + rows)
        const bytes = (e - s) * this.dim * 4
        const vectors = new Float32Array((e - s) * this.dim)
        const {bytesRead} = await fh.read(new Uint8Array(vectors.buffer), 0, bytes, s * this.dim * 4)
        if (bytesRead !== bytes) throw new Error(`embedding cache ${this.path} is truncated (read ${bytesRead} of ${bytes} bytes at row ${s})`)
        yield {ids: ids.slice(s, e), vectors}
      }
    } finally {
      await fh.close()
    }
  }
}

export interface EmbedOptions {
  /** Texts read from the source and handed to the encoder per call (default 2048); bounds host memory while encoding. */
  sliceSize?: number
  /** Progress: texts encoded (or found in the cache) so far, of all. */
  onEvent?: (event: EncodeProgressEvent) => void
}

/**
 * Encodes texts through `encode`, using `cacheDir` when given. Without a cache directory the
 * vectors stay in memory. Texts are read from their source one slice at a time (`slice(s, s +
 * sliceSize)`), so only one slice of texts is in memory; with a cache directory the vectors go to
 * the entry's file as they come, so a corpus of any size is encoded in bounded memory.
 *
 * With a `group` of W > 1 ranks (a job running the same command on every rank), the slices are
 * encoded in parallel (slice i by rank i mod W, tensor/shards.ts) and every rank gets the whole
 * matrix, identical to the single-process one. Rank 0 alone owns the cache: it decides hit or miss
 * and tells the others (so every rank takes the same path, whatever files they see); on a hit it
 * sends them the cached vectors, on a miss it writes the entry. Other ranks write nothing.
 */
export class EmbeddingStore {
  hits = 0
  misses = 0
  readonly group?: ShardGroup
  constructor(
    readonly cacheDir?: string,
    options: {group?: ShardGroup} = {},
  ) {
    if (options.group && options.group.worldSize > 1) this.group = options.group
    // Ranks other than 0 never touch the cache directory (it may lie in rank 0's output, not yet claimed).
    if (this.group && this.group.rank !== 0) this.cacheDir = undefined
    if (!this.cacheDir) return
    mkdirSync(this.cacheDir, {recursive: true})
    // temporary files of runs that died mid-write (their process is gone) are garbage
    removeTemps(this.cacheDir, (temp) => !processAlive(temp.pid))
  }

  async embed(key: EmbeddingKey, input: TextSource | readonly string[], encode: EncodeSlice, options: EmbedOptions = {}): Promise<EmbeddingMatrix> {
    const texts = textSource(input)
    const count = texts.count
    const slice = Math.max(1, options.sliceSize ?? 2048)
    if (this.group) return this.embedSharded(this.group, key, texts, encode, slice, options)
    if (!this.cacheDir) {
      this.misses++
      const parts: Float32Array[] = []
      let dim = 0
      for (let s = 0; s < count; s += slice) {
        const vecs = await encode(await texts.slice(s, s + slice))
        for (const v of vecs) {
          dim ||= v.length
          parts.push(v)
        }
        options.onEvent?.({type: 'encode-progress', done: Math.min(count, s + slice), total: count})
      }
      const data = new Float32Array(parts.length * dim)
      parts.forEach((v, i) => data.set(v, i * dim))
      return new MemoryMatrix(data, count, dim)
    }
    const id = cacheKey(key, await texts.hash())
    const dataPath = join(this.cacheDir, `${id}.f32`)
    const metaPath = join(this.cacheDir, `${id}.json`)
    if (existsSync(dataPath) && existsSync(metaPath)) {
      try {
        const meta = JSON.parse(await readFile(metaPath, 'utf8')) as {count: number; dim: number}
        if (meta.count === count && meta.dim > 0) {
          this.hits++
          options.onEvent?.({type: 'encode-progress', done: count, total: count})
          return new FileMatrix(dataPath, meta.count, meta.dim, true)
        }
      } catch {
        // unreadable entry: recompute and overwrite it
      }
    }
    this.misses++
    const file = AtomicFile.create(dataPath)
    let dim = 0
    let written = 0
    try {
      for (let s = 0; s < count; s += slice) {
        const vecs = await encode(await texts.slice(s, s + slice))
        if (vecs.length !== Math.min(slice, count - s)) throw new Error(`encoder returned ${vecs.length} vectors for ${Math.min(slice, count - s)} texts`)
        dim ||= vecs[0]?.length ?? 0
        const block = new Float32Array(vecs.length * dim)
        vecs.forEach((v, i) => block.set(v, i * dim))
        file.write(new Uint8Array(block.buffer))
        written += vecs.length
        options.onEvent?.({type: 'encode-progress', done: written, total: count})
      }
    } catch (error) {
      file.abort()
      throw error
    }
    file.commit()
    writeFileAtomic(metaPath, JSON.stringify({count: written, dim, key, createdAt: new Date().toISOString()}, null, 2))
    return new FileMatrix(dataPath, written, dim, false)
  }

  /** The cached entry of `id` holding `count` vectors, when there is a readable one. */
  private async lookup(id: string, count: number): Promise<FileMatrix | undefined> {
    const dataPath = join(this.cacheDir!, `${id}.f32`)
    const metaPath = join(this.cacheDir!, `${id}.json`)
    if (!existsSync(dataPath) || !existsSync(metaPath)) return undefined
    try {
      const meta = JSON.parse(await readFile(metaPath, 'utf8')) as {count: number; dim: number}
      if (meta.count === count && meta.dim > 0) return new FileMatrix(dataPath, meta.count, meta.dim, true)
    } catch {
      // unreadable entry: recompute and overwrite it
    }
    return undefined
  }

  /** embed() across the ranks of `group` (see the class comment). Every rank must call it with the same texts. */
  private async embedSharded(group: ShardGroup, key: EmbeddingKey, texts: TextSource, encode: EncodeSlice, slice: number, options: EmbedOptions): Promise<EmbeddingMatrix> {
    const {rank, worldSize} = group
    const id = this.cacheDir ? cacheKey(key, await texts.hash()) : undefined
    const hit = id ? await this.lookup(id, texts.count) : undefined
    const [isHit, count, dim] = await group.broadcastIntegers(hit ? [1, hit.count, hit.dim] : [0, 0, 0])
    if (isHit) {
      this.hits++
      options.onEvent?.({type: 'encode-progress', done: texts.count, total: texts.count})
      if (hit) {
        // rank 0 sends the cached vectors, a slice at a time (bounded memory on its side)
        for await (const chunk of hit.chunks(Array.from({length: hit.count}, () => ''), slice)) await group.broadcastFloats(chunk.vectors, chunk.vectors.length)
        return hit
      }
      const data = new Float32Array(count! * dim!)
      for (let s = 0; s < count!; s += slice) data.set(await group.broadcastFloats(undefined, (Math.min(count!, s + slice) - s) * dim!), s * dim!)
      const received = new MemoryMatrix(data, count!, dim!)
      received.fromCache = true
      return received
    }
    this.misses++
    const file = id ? AtomicFile.create(join(this.cacheDir!, `${id}.f32`)) : undefined
    const parts: Float32Array[] = []
    let width = 0
    let written = 0
    try {
      for (let round = 0; round * worldSize * slice < texts.count; round++) {
        // this rank's slice of the round: [s, e) of the single-process run's slices
        const s = (round * worldSize + rank) * slice
        const e = Math.min(texts.count, s + slice)
        let mine: {rows: number; dim: number; vectors: Float32Array} | undefined
        if (s < texts.count) {
          const vecs = await encode(await texts.slice(s, e))
          if (vecs.length !== e - s) throw new Error(`encoder returned ${vecs.length} vectors for ${e - s} texts`)
          const d = vecs[0]?.length ?? 0
          const vectors = new Float32Array(vecs.length * d)
          vecs.forEach((v, i) => vectors.set(v, i * d))
          mine = {rows: vecs.length, dim: d, vectors}
        }
        for (const block of await group.gather(mine)) {
          if (!block) continue
          width ||= block.dim
          if (file) file.write(new Uint8Array(block.vectors.buffer, block.vectors.byteOffset, block.vectors.byteLength))
          else parts.push(block.vectors)
          written += block.rows
        }
        options.onEvent?.({type: 'encode-progress', done: written, total: texts.count})
      }
    } catch (error) {
      file?.abort()
      throw error
    }
    if (written !== texts.count) throw new Error(`parallel encoding gathered ${written} vectors for ${texts.count} texts`)
    if (file) {
      file.commit()
      writeFileAtomic(join(this.cacheDir!, `${id}.json`), JSON.stringify({count: written, dim: width, key, createdAt: new Date().toISOString()}, null, 2))
      return new FileMatrix(join(this.cacheDir!, `${id}.f32`), written, width, false)
    }
    const data = new Float32Array(written * width)
    let at = 0
    for (const p of parts) {
      data.set(p, at)
      at += p.length
    }
    return new MemoryMatrix(data, written, width)
  }
}
