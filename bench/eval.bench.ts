/**
 * Evaluation throughput, on each available tensor backend:
 * - corpus texts encoded per second and the padding ratio (the bert-tiny fixture from ../shared;
 *   skipped without it) on real C-MTEB sentences: in input order, sorted by token count within a
 *   window, and sorted within a token budget per batch;
 * - queries searched per second by exact search against a 100k-document synthetic corpus (top-1000
 *   and top-10, chunks of 16,384 documents), beside PyTorch's matrix product + topk over the same
 *   chunks in the same run (bench/search_reference.py, Debian's python3-torch) and the ratio; with
 *   BENCH_FROM_CACHE=1 also streamed from the on-disk embedding cache as `codiemb eval` does.
 * - scale: `codiemb eval` end to end on a synthetic retrieval task (bert-tiny fixture) of each size in
 *   BENCH_SCALE_DOCS, with the child process's peak RSS: the corpus is streamed from its Arrow file
 *   and its vectors from the embedding cache, so 1M documents should take about the memory of 100k
 *   (the ids, one slice of texts, one search chunk) — the last line compares them.
 * Knobs: BENCH_DOCS (100000), BENCH_DIMS (768), BENCH_QUERIES (1024), BENCH_ENCODE_TEXTS (4096),
 * BENCH_BACKENDS (all available), BENCH_PARTS (encode,search,scale), BENCH_SCALE_DOCS (100000; a
 * comma list, e.g. 100000,1000000), BENCH_SCALE_QUERIES (1000), BENCH_SCALE_WORDS (words per passage,
 * min,max: 8,64), BENCH_SCALE_MAX_LENGTH (64), BENCH_SCALE_MODEL (`bert-tiny`, the fixture; or `random-mini`: a
 * random 1-layer BERT of hidden size 16 with bert-tiny's vocabulary, made by `codiemb model init`, so
 * that encoding 1M passages takes minutes and the run measures the data path), BENCH_ROUNDS (3, alternating codiemb and PyTorch),
 * BENCH_SEARCH_TFJS (1: also codiemb's tfjs-op search path), CODIEMB_TORCH_THREADS (all cores, both sides),
 * CODIEMB_DEVICE (cpu; cuda: both sides on the GPU), CODIEMB_PYTHON.
 */
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {availableParallelism, loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import * as tf from '@tensorflow/tfjs-core'
import {EmbeddingStore} from '../src/eval/embedding-cache.js'
import {chunkMatrix, exactSearch} from '../src/eval/search.js'
import {loadEncoder, SORT_WINDOW_BATCHES, type EncodeOptions} from '../src/model/encoder.js'
import {ArrowRecordWriter} from '../src/io/arrow-records.js'
import type {EncodeProgressEvent} from '../src/core/events.js'
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

/**
 * Real C-MTEB sentences of mixed lengths: the first texts of each STS set in ../shared, interleaved
 * (ATEC/BQ/LCQMC questions are short, PAWSX and STS-B sentences longer), or synthetic ones without it.
 */
function sentences(n: number): {texts: string[]; source: string} {
  const files = ['atec/ATEC.test.data', 'bq/BQ.test.data', 'lcqmc/LCQMC.test.data', 'pawsx/PAWSX.test.data', 'stsb-zh/STS-B.test.data'].map((f) => join(sharedDir, 'data', f))
  if (files.every(existsSync)) {
    const per = files.map((f) => [...new Set(readFileSync(f, 'utf8').split('\n').filter(Boolean).flatMap((l) => l.split('\t').slice(0, 2)))])
    const texts: string[] = []
    for (let i = 0; texts.length < n; i++) for (const list of per) if (texts.length < n && list[i]) texts.push(list[i])
    return {texts, source: 'C-MTEB ATEC, BQ, LCQMC, PAWSX and STSB test sentences from ../shared, interleaved'}
  }
  const words = ['model', 'embedding', 'retrieval', 'query', 'passage', 'similar', 'sentence', 'score', 'vector', 'search']
  const random = new Rng(7)
  return {texts: Array.from({length: n}, () => Array.from({length: 2 + random.int(40)}, () => words[random.int(words.length)]).join(' ')), source: 'synthetic (../shared absent)'}
}

async function benchEncode(backend: string): Promise<void> {
  const fixture = join(sharedDir, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!existsSync(fixture)) {
    console.log(`[${backend}] encode: skipped (${fixture} is absent; set CODIEMB_SHARED)`)
    return
  }
  const encoder = await loadEncoder(fixture, {registry: BUILTINS})
  const {texts, source} = sentences(Number(process.env.BENCH_ENCODE_TEXTS ?? 4096))
  const batchSize = 32
  await encoder.encode(texts.slice(0, 64), {batchSize}) // warm-up
  const variants: [string, EncodeOptions][] = [
    ['input order (no sorting)', {batchSize, sortWindow: batchSize}],
    [`sorted by token count (window ${SORT_WINDOW_BATCHES * batchSize})`, {batchSize}],
    ['sorted, maxTokensPerBatch 2048', {maxTokensPerBatch: 2048}],
  ]
  for (const [label, options] of variants) {
    let last: EncodeProgressEvent | undefined
    const t0 = performance.now()
    await encoder.encode(texts, {...options, maxLength: 128, onEvent: (e) => (last = e)})
    const s = (performance.now() - t0) / 1000
    const padding = last?.tokens && last.padded ? 1 - last.tokens / last.padded : NaN
    console.log(`[${backend}] encode, ${label}: ${(texts.length / s).toFixed(1)} texts/s, padding ratio ${padding.toFixed(3)} (${texts.length} texts: ${source}; bert-tiny fixture, max length 128; ${load()})`)
  }
  encoder.dispose()
}

/**
 * Scale: a synthetic retrieval task of `nDocs` documents end to end through `codiemb eval` (prepared
 * Arrow files, the corpus streamed slice by slice, encoding through the embedding cache, exact search,
 * metrics, result file) with the bert-tiny fixture, in a child process whose peak RSS /usr/bin/time
 * reports. Returns the peak RSS in bytes (undefined when not measured).
 */
async function benchScale(backend: string, nDocs: number): Promise<number | undefined> {
  const fixture = join(sharedDir, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!existsSync(fixture)) {
    console.log(`[${backend}] scale: skipped (${fixture} is absent; set CODIEMB_SHARED)`)
    return undefined
  }
  const nQueries = Number(process.env.BENCH_SCALE_QUERIES ?? 1000)
  const [minWords, maxWords] = (process.env.BENCH_SCALE_WORDS ?? '8,64').split(',').map(Number) as [number, number]
  const maxLength = Number(process.env.BENCH_SCALE_MAX_LENGTH ?? 64)
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-scale-'))
  try {
    const random = new Rng(11)
    const vocab = readFileSync(join(fixture, 'vocab.txt'), 'utf8').split('\n').filter((w) => /^([\u4e00-\u9fff]|[a-z]{2,})$/.test(w))
    const data = join(dir, 'data', 'synthetic')
    mkdirSync(data, {recursive: true})
    const docWords: string[][] = []
    const t0 = performance.now()
    const corpus = new ArrowRecordWriter(join(data, 'corpus.arrow'), 'corpus')
    for (let i = 0; i < nDocs; i++) {
      const words = Array.from({length: minWords + random.int(maxWords - minWords + 1)}, () => vocab[random.int(vocab.length)])
      if (i < nQueries) docWords.push(words)
      corpus.write({id: `d${i}`, title: '', text: words.join(' ')})
    }
    const written = await corpus.finish()
    const queries = new ArrowRecordWriter(join(data, 'queries.arrow'), 'queries')
    const qrels = new ArrowRecordWriter(join(data, 'qrels.arrow'), 'qrels')
    for (let i = 0; i < nQueries; i++) {
      // a query is its document's text: the answer is known (nDCG@10 near 1 unless the search is wrong)
      queries.write({id: `q${i}`, text: docWords[i].join(' '), instruction: ''})
      qrels.write({query_id: `q${i}`, corpus_id: `d${i}`, score: 1})
    }
    await queries.finish()
    await qrels.finish()
    const corpusBytes = statSync(join(data, 'corpus.arrow')).size
    console.log(`[${backend}] scale: wrote a ${nDocs}-document corpus (${mib(corpusBytes)}, ${written.rows} rows) in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
    const config = join(dir, 'eval.json')
    writeFileSync(config, JSON.stringify({eval: {tasks: [{name: 'Synthetic', type: 'retrieval', split: 'test', dir: 'synthetic'}], batchSize: 128, maxLength}}))
    const out = join(dir, 'results')
    const modelName = process.env.BENCH_SCALE_MODEL ?? 'bert-tiny'
    let model = fixture
    if (modelName === 'random-mini') {
      model = join(dir, 'random-mini')
      const init = ['model', 'init', '--arch', 'bert', '--tokenizer', fixture, '--layers', '1', '--hidden', '16', '--heads', '1', '--intermediate', '32', '--max-length', String(Math.max(maxLength, 64)), '--seed', '3', '--out', model]
      const made = spawnSync(process.execPath, [join(root, 'bin', 'run.js'), ...init], {encoding: 'utf8'})
      if (made.status !== 0) throw new Error(`codiemb model init failed: ${made.stderr || made.stdout}`)
    } else if (modelName !== 'bert-tiny') throw new Error(`BENCH_SCALE_MODEL: expected bert-tiny or random-mini, got ${modelName}`)
    const args = [join(root, 'bin', 'run.js'), 'eval', '--model', model, '--config', config, '--data-dir', join(dir, 'data'), '--out', out, '--backend', backend, '--json']
    const timed = existsSync('/usr/bin/time')
    const t1 = performance.now()
    const r = timed ? spawnSync('/usr/bin/time', ['-f', 'peak-rss-kib %M', process.execPath, ...args], {encoding: 'utf8', maxBuffer: 1 << 26}) : spawnSync(process.execPath, args, {encoding: 'utf8', maxBuffer: 1 << 26})
    const s = (performance.now() - t1) / 1000
    if (r.status !== 0) {
      console.log(`[${backend}] scale: codiemb eval failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`)
      return undefined
    }
    const result = JSON.parse(r.stdout).result
    const file = JSON.parse(readFileSync(join(result.dir, 'Synthetic.json'), 'utf8'))
    const peak = /peak-rss-kib (\d+)/.exec(r.stderr)?.[1]
    console.log(
      `[${backend}] scale: codiemb eval on a synthetic ${nDocs}-document retrieval task (${nQueries} queries, ${minWords}–${maxWords} words per passage, corpus file ${mib(corpusBytes)}; model ${modelName}, batch 128, max length ${maxLength}; embedding cache on): ${s.toFixed(1)} s end to end, ` +
        `nDCG@10 ${file.scores.test[0].ndcg_at_10.toFixed(4)}, recall@1000 ${file.scores.test[0].recall_at_1000.toFixed(4)} (${JSON.stringify(file.codiemb.counts)}), peak RSS ${peak ? mib(Number(peak) * 1024) : 'not measured (no /usr/bin/time)'} (${load()})`,
    )
    return peak ? Number(peak) * 1024 : undefined
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

/** A python with torch for the PyTorch reference (CODIEMB_PYTHON, Debian's /usr/bin/python3, python3), or why there is none. */
function pythonWithTorch(): string | {missing: string} {
  for (const py of [process.env.CODIEMB_PYTHON, '/usr/bin/python3', 'python3'].filter((p): p is string => !!p)) {
    if (spawnSync(py, ['-c', 'import torch'], {encoding: 'utf8'}).status === 0) return py
  }
  return {missing: 'no python with torch (apt-get install python3-torch, or set CODIEMB_PYTHON)'}
}

/** One side's timing of one search: queries per second (wall) and the process's CPU seconds. */
interface Timing {
  qps: number
  cpu: number
}

/** PyTorch's matrix product + topk over the same chunks (bench/search_reference.py): timing per k. */
function pytorchSearch(docs: number, dim: number, nQueries: number, ks: number[]): Map<number, Timing> | string {
  const py = pythonWithTorch()
  if (typeof py !== 'string') return py.missing
  const args = ['--docs', docs, '--dim', dim, '--queries', nQueries, '--k', ks.join(','), '--chunk', CHUNK, '--query-batch', QUERY_BATCH, '--threads', threads, '--device', process.env.CODIEMB_DEVICE ?? 'cpu']
  const r = spawnSync(py, [join(root, 'bench', 'search_reference.py'), ...args.map(String)], {encoding: 'utf8'})
  if (r.status !== 0) return `PyTorch reference failed: ${r.stderr.trim().split('\n').pop()}`
  return new Map(
    r.stdout.trim().split('\n').map((l) => JSON.parse(l) as {k: number; queries_per_s: number; cpu_seconds: number}).map((x) => [x.k, {qps: x.queries_per_s, cpu: x.cpu_seconds}]),
  )
}

const CHUNK = 16384
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const QUERY_BATCH = 256
const threads = Number(process.env.CODIEMB_TORCH_THREADS) || availableParallelism()
const load = () => `load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`

/**
 * codiemb's exactSearch and PyTorch's reference over the same synthetic corpus, in alternating rounds
 * (a change in the machine's load hits both sides alike). Per side: queries/s (wall) and CPU seconds
 * of the whole process (all threads), the second far less sensitive to other load on a shared
 * machine. BENCH_SEARCH_TFJS=1 also times codiemb's tfjs-op path (`native: false`) in each round.
 */
async function benchSearch(backend: string, docs: number, dim: number, nQueries: number): Promise<void> {
  const random = new Rng(dim)
  const ids = Array.from({length: docs}, (_, i) => `d${i}`)
  const corpus = Float32Array.from({length: docs * dim}, () => random.next() * 2 - 1)
  const queries = Float32Array.from({length: nQueries * dim}, () => random.next() * 2 - 1)
  const qids = Array.from({length: nQueries}, (_, i) => `q${i}`)
  const ks = [1000, 10]
  const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3))
  const sides = process.env.BENCH_SEARCH_TFJS === '1' ? ['codiemb', 'codiemb (tfjs ops)'] : ['codiemb']
  const times = new Map<string, Timing[]>()
  const record = (side: string, k: number, t: Timing) => times.set(`${side}/${k}`, [...(times.get(`${side}/${k}`) ?? []), t])
  let missing: string | undefined
  await exactSearch(queries.subarray(0, 8 * dim), qids.slice(0, 8), dim, chunkMatrix(ids.slice(0, CHUNK), corpus, dim, CHUNK), {k: 10}) // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const side of sides) {
      for (const k of ks) {
        peakTensorBytes = 0
        const c0 = process.cpuUsage()
        const t0 = performance.now()
        const hits = await exactSearch(queries, qids, dim, chunkMatrix(ids, corpus, dim, CHUNK), {k, queryBatchSize: QUERY_BATCH, onEvent: sample, native: side === 'codiemb'})
        const s = (performance.now() - t0) / 1000
        const c = process.cpuUsage(c0)
        sample()
        if (hits[0].ids.length !== k) throw new Error(`expected ${k} hits, got ${hits[0].ids.length}`)
        record(side, k, {qps: nQueries / s, cpu: (c.user + c.system) / 1e6})
        console.log(`[${backend}] round ${round + 1}: ${side} ${(nQueries / s).toFixed(1)} queries/s, ${((c.user + c.system) / 1e6).toFixed(2)} CPU s, top-${k} (${load()})`)
      }
    }
    // the same work in PyTorch: matrix product + topk over the same chunks
    const ref = pytorchSearch(docs, dim, nQueries, ks)
    if (typeof ref === 'string') missing = ref
    else
      for (const k of ks) {
        record('PyTorch', k, ref.get(k)!)
        console.log(`[${backend}] round ${round + 1}: PyTorch ${ref.get(k)!.qps.toFixed(1)} queries/s, ${ref.get(k)!.cpu.toFixed(2)} CPU s, top-${k} (${load()})`)
      }
  }
  const fmt = (xs: number[]) => xs.map((r) => r.toFixed(2)).join(', ')
  for (const k of ks) {
    for (const side of sides) {
      const ours = times.get(`${side}/${k}`)!
      const line = `[${backend}] search (${side}): ${median(ours.map((t) => t.qps)).toFixed(1)} queries/s against ${docs} docs × dim ${dim}, top-${k} (median of ${rounds}; ${nQueries} queries, chunks of ${CHUNK}, query batches of ${QUERY_BATCH}, ${threads} threads)`
      if (missing) {
        console.log(`${line}; PyTorch reference skipped: ${missing}`)
        continue
      }
      const theirs = times.get(`PyTorch/${k}`)!
      const ratios = ours.map((x, i) => x.qps / theirs[i]!.qps)
      // CPU seconds: PyTorch's over ours, so that above 1 means codiemb did the work in less CPU time
      const cpuRatios = ours.map((x, i) => theirs[i]!.cpu / x.cpu)
      console.log(
        `${line}; PyTorch ${median(theirs.map((t) => t.qps)).toFixed(1)} queries/s; codiemb/PyTorch ${median(ratios).toFixed(2)}× (median of per-round ratios ${fmt(ratios)}); ` +
          `CPU seconds ${median(ours.map((t) => t.cpu)).toFixed(2)} vs PyTorch ${median(theirs.map((t) => t.cpu)).toFixed(2)}, PyTorch/codiemb ${median(cpuRatios).toFixed(2)}× (rounds ${fmt(cpuRatios)}; ${load()})`,
      )
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
const parts = (process.env.BENCH_PARTS ?? 'encode,search,scale').split(',')
for (const backend of available) {
  // CODIEMB_DEVICE (cuda) puts codiemb's torch backend on the same device as the PyTorch reference
  await selectBackend(registry, backend, backend === 'torch' && process.env.CODIEMB_DEVICE ? {device: process.env.CODIEMB_DEVICE} : {})
  backendReady = true
  if (parts.includes('encode')) await benchEncode(backend)
  if (parts.includes('search')) for (const dim of dims) await benchSearch(backend, docs, dim, nQueries)
  if (parts.includes('scale')) {
    const sizes = (process.env.BENCH_SCALE_DOCS ?? '100000').split(',').map(Number)
    const peaks = new Map<number, number | undefined>()
    for (const n of sizes) peaks.set(n, await benchScale(backend, n))
    const [small, large] = [Math.min(...sizes), Math.max(...sizes)]
    const [a, b] = [peaks.get(small), peaks.get(large)]
    if (sizes.length > 1 && a && b) console.log(`[${backend}] scale: peak RSS ${mib(b)} for ${large} documents vs ${mib(a)} for ${small}: ${(b / a).toFixed(2)}× for ${(large / small).toFixed(0)}× the documents`)
  }
}
clearInterval(timer)
console.log(`backends measured: ${available.join(', ')}; process peak RSS ${mib(process.resourceUsage().maxRSS * 1024)}`)
