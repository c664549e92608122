/**
 * Benchmark of `prepare` on a large input: generates a FlagEmbedding JSON-lines file of at least
 * 1 GiB (CODIEMB_BENCH_DATA_GB, default 1) in the temp directory, prepares it in a separate process
 * (so its peak RSS is its own), prints rows/s, MB/s and peak RSS, and deletes everything it wrote.
 *
 *   npm run build && node dist/bench/data.bench.js        (or: npm run bench -- data)
 */
import {spawnSync} from 'node:child_process'
import {closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Rng} from '../src/core/rng.js'

const GIB = 1024 ** 3
const targetBytes = Math.ceil(Number(process.env.CODIEMB_BENCH_DATA_GB ?? '1') * GIB)

/** Deterministic pseudo-random text (mixed English words and CJK, so UTF-8 paths are exercised). */
function makeText(seed: number): (words: number) => string {
  const random = new Rng(seed)
  const vocab = 'the of and to in is for on that with as by this are from at be an or was it which retrieval embedding model query passage document score semantic similar text data train 飞机 起飞 城市 银行 问题 答案 检索 句子 语义 相似'.split(' ')
  return (words) => {
    const out: string[] = []
    for (let i = 0; i < words; i++) out.push(vocab[random.int(vocab.length)])
    return out.join(' ')
  }
}

/**
 * Writes FlagEmbedding lines until the file reaches the target size. 4,000 distinct examples are
 * made once and repeated with a running number in each query (generation speed is not the point).
 */
function generate(file: string): {bytes: number; lines: number} {
  const text = makeText(42)
  const tails: string[] = []
  for (let i = 0; i < 4000; i++) {
    const neg = Array.from({length: 7}, () => text(30))
    tails.push(JSON.stringify({query: text(10), pos: [text(35)], neg}).slice('{"query":"'.length))
  }
  const fd = openSync(file, 'w')
  let bytes = 0
  let lines = 0
  try {
    while (bytes < targetBytes) {
      const chunk: string[] = []
      for (let i = 0; i < 4000; i++) chunk.push(`{"query":"${lines + i} ${tails[i]}\n`)
      const buf = Buffer.from(chunk.join(''), 'utf8')
      writeSync(fd, buf)
      bytes += buf.byteLength
      lines += chunk.length
    }
  } finally {
    closeSync(fd)
  }
  return {bytes, lines}
}

const here = dirname(fileURLToPath(import.meta.url))
const prepareModule = join(here, '..', 'src', 'data', 'prepare.js')

const dir = mkdtempSync(join(tmpdir(), 'codiemb-data-bench-'))
// Interrupted: still delete the gigabyte we wrote.
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    rmSync(dir, {recursive: true, force: true})
    process.exit(130)
  })
try {
  const input = join(dir, 'train.jsonl')
  const t0 = Date.now()
  const {bytes, lines} = generate(input)
  console.log(`generated ${input}: ${(bytes / GIB).toFixed(2)} GiB, ${lines.toLocaleString('en')} lines in ${((Date.now() - t0) / 1000).toFixed(1)} s`)

  // The child reports its own peak RSS (getrusage maxrss) and samples heap/RSS as it goes.
  const child = `
    const {prepare} = await import(${JSON.stringify(prepareModule)})
    let peakHeap = 0
    const timer = setInterval(() => { peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed) }, 200)
    const t = process.hrtime.bigint()
    const r = await prepare({datasets: [{name: 'bench', reader: 'flagembedding-jsonl', task: 'ir', splits: {train: 'train.jsonl'}}]},
                            {dataRoot: ${JSON.stringify(dir)}, out: ${JSON.stringify(join(dir, 'out'))}})
    clearInterval(timer)
    const seconds = Number(process.hrtime.bigint() - t) / 1e9
    const cpu = process.cpuUsage()
    console.log(JSON.stringify({rows: r.rows, rejected: r.rejected, seconds, outBytes: r.datasets[0].files[0].bytes,
      cpuSeconds: (cpu.user + cpu.system) / 1e6, maxRssBytes: process.resourceUsage().maxRSS * 1024, peakHeapBytes: peakHeap}))
  `
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', child], {encoding: 'utf8', maxBuffer: 1 << 20})
  if (run.status !== 0) throw new Error(`prepare failed:\n${run.stderr}`)
  const m = JSON.parse(run.stdout.trim().split('\n').pop()!) as {rows: number; rejected: number; seconds: number; cpuSeconds: number; outBytes: number; maxRssBytes: number; peakHeapBytes: number}
  if (m.rows !== lines) throw new Error(`expected ${lines} rows, prepared ${m.rows}`)
  const MB = 1024 * 1024
  console.log(`prepare (flagembedding-jsonl -> ir-example Arrow): ${m.rows.toLocaleString('en')} rows in ${m.seconds.toFixed(1)} s`)
  console.log(`  rows/s:        ${Math.round(m.rows / m.seconds).toLocaleString('en')} (wall clock); ${Math.round(m.rows / m.cpuSeconds).toLocaleString('en')} per CPU second (${m.cpuSeconds.toFixed(1)} s CPU; the figure to compare on a shared machine)`)
  console.log(`  input MB/s:    ${(bytes / MB / m.seconds).toFixed(1)}`)
  console.log(`  peak RSS:      ${(m.maxRssBytes / MB).toFixed(0)} MB (input ${(bytes / MB).toFixed(0)} MB, output ${(m.outBytes / MB).toFixed(0)} MB)`)
  console.log(`  peak JS heap:  ${(m.peakHeapBytes / MB).toFixed(0)} MB (sampled every 200 ms)`)
  console.log(`  output file:   ${(statSync(join(dir, 'out', 'bench', 'train.ir-example.arrow')).size / MB).toFixed(0)} MB`)
} finally {
  rmSync(dir, {recursive: true, force: true})
}
