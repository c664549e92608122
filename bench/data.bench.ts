/**
 * Benchmark of `prepare` on a large input: generates a FlagEmbedding JSON-lines file of at least
 * 1 GiB (CODIEMB_BENCH_DATA_GB, default 1) in the temp directory, prepares it in a separate process
 * (so its peak RSS is its own), prints rows/s, MB/s and peak RSS, and deletes everything it wrote.
 *
 *   npm run build && node dist/bench/data.bench.js        (or: npm run bench -- data)
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, statSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {writeFlagEmbeddingFile} from './flag-jsonl.js'

const GIB = 1024 ** 3
const targetBytes = Math.ceil(Number(process.env.CODIEMB_BENCH_DATA_GB ?? '1') * GIB)

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
  const {bytes, lines} = writeFlagEmbeddingFile(input, targetBytes)
  console.log(`generated ${input}: ${(bytes / GIB).toFixed(2)} GiB, ${lines.toLocaleString('en')} lines in ${((Date.now() - t0) / 1000).toFixed(1)} s`)

  // The child reports its own peak RSS (getrusage maxrss) and samples heap/RSS as it goes.
  const child = `
    const {prepare} = await import(${JSON.stringify(prepareModule)})
    const {builtinRegistry} = await import(${JSON.stringify(join(dirname(prepareModule), '..', 'builtins.js'))})
    const registry = await builtinRegistry()
    let peakHeap = 0
    const timer = setInterval(() => { peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed) }, 200)
    const t = process.hrtime.bigint()
    const r = await prepare({datasets: [{name: 'bench', reader: 'flagembedding-jsonl', task: 'ir', splits: {train: 'train.jsonl'}}]},
                            {registry, dataRoot: ${JSON.stringify(dir)}, out: ${JSON.stringify(join(dir, 'out'))}})
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
