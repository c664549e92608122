/**
 * Evaluation throughput, on each available tensor backend:
 * - corpus texts encoded per second (the bert-tiny fixture from ../shared; skipped without it), on real
 *   C-MTEB sentences;
 * - queries searched per second by exact search against a 100k-document synthetic corpus streamed
 *   from the on-disk embedding cache (top-1000 and top-10), with peak RSS and peak tensor bytes.
 * Knobs: BENCH_DOCS (100000), BENCH_DIMS (64,384), BENCH_QUERIES (256), BENCH_ENCODE_TEXTS (256),
 * BENCH_BACKENDS (all available).
 */
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import * as tf from '@tensorflow/tfjs-core'
import {EmbeddingStore} from '../src/eval/embedding-cache.js'
import {exactSearch} from '../src/eval/search.js'
import {loadEncoder} from '../src/model/encoder.js'
import {builtinRegistry} from '../src/builtins.js'
const BUILTINS = await builtinRegistry()
import {probeBackends, selectBackend} from '../src/tensor/backend.js'
import {Rng} from '../src/core/rng.js'

const root = join(fileURLToPath(import.meta.url), '..', '..', '..')
const sharedDir = process.env.CODIEMB_SHARED ?? join(root, '..', 'shared')

let peakRss = 0
let peakTensorBytes = 0
let backendReady = false
const sample = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
  if (backendReady) peakTensorBytes = Math.max(peakTensorBytes, tf.memory().numBytes)
}
const timer = setInterval(sample, 20)
const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`

function sentences(n: number): string[] {
  const file = join(sharedDir, 'data', 'atec', 'ATEC.test.data')
  if (existsSync(file)) {
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).flatMap((l) => l.split('\t').slice(0, 2))
    return lines.slice(0, n)
  }
  const words = ['model', 'embedding', 'retrieval', 'query', 'passage', 'similar', 'sentence', 'score', 'vector', 'search']
  const random = new Rng(7)
  return Array.from({length: n}, () => Array.from({length: 8 + random.int(16)}, () => words[random.int(words.length)]).join(' '))
}

async function benchEncode(backend: string): Promise<void> {
  const fixture = join(sharedDir, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!existsSync(fixture)) {
    console.log(`[${backend}] encode: skipped (${fixture} is absent; set CODIEMB_SHARED)`)
    return
  }
  const encoder = await loadEncoder(fixture, {registry: BUILTINS})
  const label = 'bert-tiny fixture'
  const texts = sentences(Number(process.env.BENCH_ENCODE_TEXTS ?? 256))
  await encoder.encode(texts.slice(0, 8), {batchSize: 8}) // warm-up
  const t0 = performance.now()
  await encoder.encode(texts, {batchSize: 32, maxLength: 128})
  const s = (performance.now() - t0) / 1000
  console.log(`[${backend}] encode: ${(texts.length / s).toFixed(1)} texts/s (${texts.length} texts, ${label}, batch 32, max length 128)`)
  encoder.dispose()
}

async function benchSearch(backend: string, docs: number, dim: number, nQueries: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-bench-'))
  try {
    const random = new Rng(dim)
    const store = new EmbeddingStore(dir)
    const ids = Array.from({length: docs}, (_, i) => `d${i}`)
    // a synthetic corpus written to the cache the way eval writes one (no text is held)
    const fakeTexts = ids
    const corpus = await store.embed({model: 'synthetic', task: 'bench', split: 'corpus', role: 'corpus', prompt: '', maxLength: 0}, fakeTexts, async (slice) =>
      slice.map(() => Float32Array.from({length: dim}, () => random.next() * 2 - 1)),
      {sliceSize: 8192},
    )
    const queries = Float32Array.from({length: nQueries * dim}, () => random.next() * 2 - 1)
    const qids = Array.from({length: nQueries}, (_, i) => `q${i}`)
    for (const k of [1000, 10]) {
      peakRss = 0
      peakTensorBytes = 0
      const t0 = performance.now()
      const hits = await exactSearch(queries, qids, dim, corpus.chunks(ids, 16384), {k, queryBatchSize: 256, onEvent: sample})
      const s = (performance.now() - t0) / 1000
      sample()
      if (hits[0].ids.length !== k) throw new Error(`expected ${k} hits, got ${hits[0].ids.length}`)
      // one corpus chunk and one [queryBatch × chunk] score block live on the backend at a time
      const blockBytes = (16384 * dim + 256 * 16384) * 4
      console.log(
        `[${backend}] search: ${(nQueries / s).toFixed(1)} queries/s against ${docs} docs × dim ${dim}, top-${k} (${nQueries} queries in ${s.toFixed(2)} s; process peak RSS so far ${mib(process.resourceUsage().maxRSS * 1024)}, tensor memory between chunks ${mib(peakTensorBytes)}, chunk + score block ${mib(blockBytes)})`,
      )
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

const registry = await builtinRegistry()
const wanted = process.env.BENCH_BACKENDS?.split(',')
const available = (await probeBackends(registry)).filter((p) => p.available && (!wanted || wanted.includes(p.name))).map((p) => p.name)
const docs = Number(process.env.BENCH_DOCS ?? 100000)
const dims = (process.env.BENCH_DIMS ?? '64,384').split(',').map(Number)
const nQueries = Number(process.env.BENCH_QUERIES ?? 256)
for (const backend of available) {
  await selectBackend(registry, backend)
  backendReady = true
  await benchEncode(backend)
  for (const dim of dims) await benchSearch(backend, docs, dim, nQueries)
}
clearInterval(timer)
console.log(`backends measured: ${available.join(', ')}; process peak RSS ${mib(process.resourceUsage().maxRSS * 1024)}`)
