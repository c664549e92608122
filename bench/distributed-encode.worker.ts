/**
 * One process of the encoding part of bench/distributed.bench.ts: encodes the texts of
 * stsb-zh-hardneg (queries, positives, negatives; distinct, first N) with a randomly initialised
 * BERT through EmbeddingStore, as one rank of a job (torchrun's variables set: slice i by rank i mod W,
 * gathered) or alone. Prints one JSON line: seconds of the measured encoding (after a warm-up), texts,
 * tokens-free throughput, bytes gathered, and a SHA-256 of the matrix (equal across world sizes when
 * the parallel encoding reproduces the single-process vectors).
 */
import {createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {builtinRegistry} from '../src/builtins.js'
import {distributedEnv} from '../src/core/distributed-env.js'
import {selectBackend} from '../src/tensor/backend.js'
import {joinProcessGroup} from '../src/tensor/process-group.js'
import {shardGroup} from '../src/tensor/shards.js'
import {initRandomEncoder} from '../src/model/encoder.js'
import {EmbeddingStore} from '../src/eval/embedding-cache.js'

const [count, slice, layers, hidden] = process.argv.slice(2).map(Number) as [number, number, number, number]
const SHARED = process.env.CODIEMB_SHARED ?? join(process.cwd(), '..', 'shared')
const distinct = new Set<string>()
for (const line of readFileSync(join(SHARED, 'data', 'stsb-zh-hardneg', 'bge_finetune_data.jsonl'), 'utf8').split('\n')) {
  if (!line) continue
  const r = JSON.parse(line) as {query: string; pos: string[]; neg: string[]}
  for (const t of [r.query, ...r.pos, ...r.neg]) distinct.add(t)
  if (distinct.size >= count) break
}
const texts = [...distinct].slice(0, count)
const registry = await builtinRegistry()
await selectBackend(registry, 'torch')
const env = distributedEnv()
const collectives = env ? await joinProcessGroup(env, 'torch') : undefined
const group = collectives ? shardGroup(collectives) : undefined
const encoder = await initRandomEncoder({arch: 'bert', tokenizerDir: join(SHARED, 'data', 'bert-vocab-zh'), layers, hidden, heads: Math.max(1, hidden / 64), intermediate: 4 * hidden, maxPositions: 64, seed: 1, registry})
const encode = (batch: string[]) => encoder.encode(batch, {batchSize: 32, maxLength: 64})
const key = {model: 'bench', task: 'bench', split: 'test', role: 'texts', prompt: '', maxLength: 64}
// warm-up: one slice per rank, gathered
await new EmbeddingStore(undefined, {group}).embed(key, texts.slice(0, slice * (group?.worldSize ?? 1)), encode, {sliceSize: slice})
const before = collectives?.stats().bytesGathered ?? 0
const started = performance.now()
const matrix = await new EmbeddingStore(undefined, {group}).embed(key, texts, encode, {sliceSize: slice})
const seconds = (performance.now() - started) / 1000
const data = await matrix.readAll()
console.log(
  JSON.stringify({
    rank: group?.rank ?? 0,
    world: group?.worldSize ?? 1,
    texts: matrix.count,
    dim: matrix.dim,
    seconds,
    bytesGathered: (collectives?.stats().bytesGathered ?? 0) - before,
    sha256: createHash('sha256').update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)).digest('hex'),
  }),
)
collectives?.close()
