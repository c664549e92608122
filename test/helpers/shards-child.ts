/**
 * One rank of test/tensor/shards.test.ts: joins the process group from torchrun's variables, then
 * exercises tensor/shards.ts directly and EmbeddingStore's parallel slices with a deterministic
 * stand-in encoder; prints its observations as one JSON line. argv[2]: a scratch folder (each rank
 * is given the cache folder <dir>/cache-<rank>; only rank 0 may create its own).
 */
import * as tf from '@tensorflow/tfjs-core'
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {distributedEnv} from '../../src/core/distributed-env.js'
import {joinProcessGroup} from '../../src/tensor/process-group.js'
import {shardGroup} from '../../src/tensor/shards.js'
import {EmbeddingStore} from '../../src/eval/embedding-cache.js'
import {useTestBackend} from './env.js'

const dir = process.argv[2]!
const backend = await useTestBackend()
const collectives = await joinProcessGroup(distributedEnv()!, backend)
const group = shardGroup(collectives)
const r = group.rank
const out: Record<string, unknown> = {rank: r}
try {
  const tensorsBefore = tf.memory().numTensors
  // rank r sends r rows of width 2 (rank 0: none), and an extra above 2^32
  const block = r === 0 ? undefined : {rows: r, dim: 2, vectors: Float32Array.from({length: 2 * r}, (_, i) => r * 100 + i), extra: 2 ** 33 + r}
  out.gathered = (await group.gather(block)).map((b) => (b ? {rows: b.rows, dim: b.dim, extra: b.extra, vectors: Array.from(b.vectors)} : null))
  out.integers = await group.broadcastIntegers(r === 0 ? [5, 2 ** 30, -7] : [0, 0, 0])
  out.floats = Array.from(await group.broadcastFloats(r === 0 ? Float32Array.from([0.25, -1.5]) : undefined, 2))

  // EmbeddingStore: 10 texts in slices of 3; this rank's encode calls are recorded
  const texts = Array.from({length: 10}, (_, i) => `text ${i} ${'x'.repeat(i)}`)
  const calls: string[] = []
  const encode = async (slice: string[]) => {
    calls.push(slice[0]!)
    return slice.map((t) => Float32Array.from([t.length, t.charCodeAt(5), 1]))
  }
  const key = {model: 'm', task: 't', split: 's', role: 'texts', prompt: '', maxLength: 8}
  const alone = await new EmbeddingStore().embed(key, texts, async (s) => s.map((t) => Float32Array.from([t.length, t.charCodeAt(5), 1])), {sliceSize: 3})
  const cacheDir = join(dir, `cache-${r}`)
  const store = new EmbeddingStore(cacheDir, {group})
  const first = await store.embed(key, texts, encode, {sliceSize: 3})
  out.calls = [...calls]
  const again = await store.embed(key, texts, encode, {sliceSize: 3})
  out.callsAfterHit = calls.length
  out.sameAsAlone = Array.from(await first.readAll()).join() === Array.from(await alone.readAll()).join()
  out.hitSame = Array.from(await again.readAll()).join() === Array.from(await alone.readAll()).join()
  out.fromCache = [first.fromCache, again.fromCache]
  out.counts = {hits: store.hits, misses: store.misses}
  out.cacheDirExists = existsSync(cacheDir)
  out.tensorsLeft = tf.memory().numTensors - tensorsBefore
  console.log(JSON.stringify(out))
  collectives.close()
} catch (error) {
  console.log(JSON.stringify({...out, error: (error as Error).message, stack: (error as Error).stack}))
  process.exit(1)
}
