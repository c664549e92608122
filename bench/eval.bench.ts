/**
 * Evaluation throughput, on each available tensor backend:
 * - corpus texts encoded per second (the bert-tiny fixture from ../shared; skipped without it), on real
 *   C-MTEB sentences;
 * - queries searched per second by exact search against a 100k-document synthetic corpus (top-1000
 *   and top-10, chunks of 16,384 documents), beside PyTorch's matrix product + topk over the same
 *   chunks in the same run (bench/search_reference.py, Debian's python3-torch) and the ratio; with
 *   BENCH_FROM_CACHE=1 also streamed from the on-disk embedding cache as `codiemb eval` does.
 * Knobs: BENCH_DOCS (100000), BENCH_DIMS (768), BENCH_QUERIES (1024), BENCH_ENCODE_TEXTS (256),
 * BENCH_BACKENDS (all available), BENCH_PARTS (encode,search), BENCH_ROUNDS (3, alternating codiemb and PyTorch), CODIEMB_TORCH_THREADS (all cores, both sides), CODIEMB_PYTHON.
 */
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {availableParallelism, loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import * as tf from '@tensorflow/tfjs-core'
import {EmbeddingStore} from '../src/eval/embedding-cache.js'
import {chunkMatrix, exactSearch} from '../src/eval/search.js'
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

/** A python with torch for the PyTorch reference (CODIEMB_PYTHON, Debian's /usr/bin/python3, python3), or why there is none. */
function pythonWithTorch(): string | {missing: string} {
  for (const py of [process.env.CODIEMB_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p)) {
    if (spawnSync(py, ['-c', 'import torch'], {encoding: 'utf8'}).status === 0) return py
  }
  return {missing: 'no python with torch (apt-get install python3-torch, or set CODIEMB_PYTHON)'}
}

/** PyTorch's matrix product + topk over the same chunks (bench/search_reference.py): queries/s per k. */
function pytorchSearch(docs: number, dim: number, nQueries: number, ks: number[]): Map<number, number> | string {
  const py = pythonWithTorch()
  if (typeof py !== 'string') return py.missing
  const args = ['--docs', docs, '--dim', dim, '--queries', nQueries, '--k', ks.join(','), '--chunk', CHUNK, '--query-batch', QUERY_BATCH, '--threads', threads, '--device', process.env.CODIEMB_DEVICE ?? 'cpu']
  const r = spawnSync(py, [join(root, 'bench', 'search_reference.py'), ...args.map(String)], {encoding: 'utf8'})
  if (r.status !== 0) return `PyTorch reference failed: ${r.stderr.trim().split('\n').pop()}`
  return new Map(r.stdout.trim().split('\n').map((l) => JSON.parse(l) as {k: number; queries_per_s: number}).map((x) => [x.k, x.queries_per_s]))
}

const CHUNK = 16384
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const QUERY_BATCH = 256
const threads = Number(process.env.CODIEMB_TORCH_THREADS) || availableParallelism()
const load = () => `load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`

async function benchSearch(backend: string, docs: number, dim: number, nQueries: number): Promise<void> {
  const random = new Rng(dim)
  const ids = Array.from({length: docs}, (_, i) => `d${i}`)
  const corpus = Float32Array.from({length: docs * dim}, () => random.next() * 2 - 1)
  const queries = Float32Array.from({length: nQueries * dim}, () => random.next() * 2 - 1)
  const qids = Array.from({length: nQueries}, (_, i) => `q${i}`)
  const ks = [1000, 10]
  const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3))
  // rounds alternate codiemb and PyTorch, so a change in the machine's load hits both sides alike
  const ours = new Map<number, number[]>(ks.map((k) => [k, []]))
  const theirs = new Map<number, number[]>(ks.map((k) => [k, []]))
  let missing: string | undefined
  await exactSearch(queries.subarray(0, 8 * dim), qids.slice(0, 8), dim, chunkMatrix(ids.slice(0, CHUNK), corpus, dim, CHUNK), {k: 10}) // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const k of ks) {
      peakTensorBytes = 0
      const t0 = performance.now()
      const hits = await exactSearch(queries, qids, dim, chunkMatrix(ids, corpus, dim, CHUNK), {k, queryBatchSize: QUERY_BATCH, onEvent: sample})
      const s = (performance.now() - t0) / 1000
      sample()
      if (hits[0].ids.length !== k) throw new Error(`expected ${k} hits, got ${hits[0].ids.length}`)
      ours.get(k)!.push(nQueries / s)
      console.log(`[${backend}] round ${round + 1}: codiemb ${(nQueries / s).toFixed(1)} queries/s, top-${k} (${load()})`)
    }
    // the same work in PyTorch: matrix product + topk over the same chunks
    const ref = pytorchSearch(docs, dim, nQueries, ks)
    if (typeof ref === 'string') missing = ref
    else
      for (const k of ks) {
        theirs.get(k)!.push(ref.get(k)!)
        console.log(`[${backend}] round ${round + 1}: PyTorch ${ref.get(k)!.toFixed(1)} queries/s, top-${k} (${load()})`)
      }
  }
  for (const k of ks) {
    const q = median(ours.get(k)!)
    const line = `[${backend}] search: ${q.toFixed(1)} queries/s against ${docs} docs × dim ${dim}, top-${k} (median of ${rounds}; ${nQueries} queries, chunks of ${CHUNK}, query batches of ${QUERY_BATCH}, ${threads} threads)`
    if (missing) console.log(`${line}; PyTorch reference skipped: ${missing}`)
    else {
      const ratios = ours.get(k)!.map((x, i) => x / theirs.get(k)![i])
      console.log(`${line}; PyTorch ${median(theirs.get(k)!).toFixed(1)} queries/s; codiemb/PyTorch ${median(ratios).toFixed(2)}× (median of per-round ratios ${ratios.map((r) => r.toFixed(2)).join(', ')}; ${load()})`)
    }
  }
  if (process.env.BENCH_FROM_CACHE === '1') await benchSearchFromCache(backend, ids, corpus, dim, queries, qids)
}

/** The eval path: the corpus streamed from the on-disk embedding cache. */
async function benchSearchFromCache(backend: string, ids: string[], corpus: Float32Array, dim: number, queries: Float32Array, qids: string[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-bench-'))
  try {
    const store = new EmbeddingStore(dir)
    let at = 0
    const cached = await store.embed({model: 'synthetic', task: 'bench', split: 'corpus', role: 'corpus', prompt: '', maxLength: 0}, ids, async (slice) =>
      slice.map(() => corpus.slice(at * dim, ++at * dim)),
      {sliceSize: 8192},
    )
    for (const k of [1000, 10]) {
      const t0 = performance.now()
      await exactSearch(queries, qids, dim, cached.chunks(ids, CHUNK), {k, queryBatchSize: QUERY_BATCH})
      const s = (performance.now() - t0) / 1000
      console.log(`[${backend}] search from the embedding cache: ${(qids.length / s).toFixed(1)} queries/s, top-${k} (${load()})`)
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

const registry = await builtinRegistry()
const wanted = process.env.BENCH_BACKENDS?.split(',')
const available = (await probeBackends(registry)).filter((p) => p.available && (!wanted || wanted.includes(p.name))).map((p) => p.name)
const docs = Number(process.env.BENCH_DOCS ?? 100000)
const dims = (process.env.BENCH_DIMS ?? '768').split(',').map(Number)
const nQueries = Number(process.env.BENCH_QUERIES ?? 1024)
const parts = (process.env.BENCH_PARTS ?? 'encode,search').split(',')
for (const backend of available) {
  await selectBackend(registry, backend)
  backendReady = true
  if (parts.includes('encode')) await benchEncode(backend)
  if (parts.includes('search')) for (const dim of dims) await benchSearch(backend, docs, dim, nQueries)
}
clearInterval(timer)
console.log(`backends measured: ${available.join(', ')}; process peak RSS ${mib(process.resourceUsage().maxRSS * 1024)}`)
