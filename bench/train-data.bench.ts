/**
 * Training data streamed from Arrow (issue 20): generates a synthetic FlagEmbedding JSON-lines file
 * (1 query, 1 positive, 7 negatives per line; CODIEMB_BENCH_TRAIN_DATA_GB, default 0.5, of JSON;
 * the prepared Arrow file is about as large), prepares it (`codiemb prepare`'s library call, in a
 * child), then runs 20 training steps of a tiny random BERT (2 layers, hidden 32, the Chinese BERT
 * vocabulary of ../shared) on it in a child process of its own, and reports:
 *
 * - start-up: seconds from the start of runTraining to the end of the first step, and the bytes the
 *   process read (/proc/self/io rchar) before the first step, against the file's text bytes;
 * - steps/s over steps 2–20;
 * - peak RSS (getrusage maxrss) and the peak of RssAnon (anonymous memory; /proc/self/status,
 *   sampled every 50 ms) of the training process;
 * - bytes read per step (rchar between step 1 and step 20, every read of the process) against the
 *   batch's own text bytes; and, from a separate reader process using the trainer's row reader
 *   (train/data.ts), the same split into record-batch checksum checks (each record batch is read
 *   whole once, the first time one of its rows is used) and the rows' own byte-range reads.
 *
 * Then deletes everything it wrote (CODIEMB_BENCH_DIR chooses where: default the temp directory;
 * the run needs about 2.2× the size in free space). CODIEMB_BENCH_KEEP=1 keeps the prepared file
 * (the JSON lines are deleted) and prints its directory; CODIEMB_BENCH_REUSE=<that directory> then
 * skips generating and preparing (to repeat the training measurement only). Not in CI. Backend: cpu (the data path is what
 * is measured; CODIEMB_BENCH_BACKEND=torch with a built addon). The page cache is not dropped first (that
 * needs root); the start-up figure after `prepare` therefore reads from memory.
 *
 *   npm run bench -- train-data          CODIEMB_BENCH_TRAIN_DATA_GB=5 npm run bench -- train-data
 */
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {loadavg, tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {writeFlagEmbeddingFile} from './flag-jsonl.js'

const GB = 1e9
const MB = 1024 * 1024
const targetBytes = Math.ceil(Number(process.env.CODIEMB_BENCH_TRAIN_DATA_GB ?? '0.5') * GB)
const BATCH = Number(process.env.CODIEMB_BENCH_BATCH ?? '16')
const STEPS = 20
const SHARED = process.env.CODIEMB_SHARED ?? join(process.cwd(), '..', 'shared')
const vocabDir = join(SHARED, 'data', 'bert-vocab-zh')
if (!existsSync(vocabDir)) {
  console.log(`train-data bench skipped: ${vocabDir} not found (set CODIEMB_SHARED to the shared data directory)`)
  process.exit(0)
}
const here = dirname(fileURLToPath(import.meta.url))
const src = join(here, '..', 'src')
const backend = process.env.CODIEMB_BENCH_BACKEND ?? 'cpu'

function child(script: string, what: string): Record<string, number> {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], {encoding: 'utf8', maxBuffer: 1 << 24})
  if (run.status !== 0) throw new Error(`${what} failed:\n${run.stdout}\n${run.stderr}`)
  return JSON.parse(run.stdout.trim().split('\n').pop()!) as Record<string, number>
}

/** In a child: peak RssAnon sampled, rchar read at marks. */
const probes = `
  import {readFileSync} from 'node:fs'
  const status = () => Object.fromEntries(readFileSync('/proc/self/status', 'utf8').split('\\n').filter((l) => l.includes(':')).map((l) => [l.split(':')[0], parseInt(l.split(':')[1])]))
  const rchar = () => Number(/rchar: (\\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))[1])
  let peakAnon = 0
  const sample = () => { peakAnon = Math.max(peakAnon, status().RssAnon * 1024) }
  const timer = setInterval(sample, 50)
`

const reuse = process.env.CODIEMB_BENCH_REUSE
const keep = reuse !== undefined || process.env.CODIEMB_BENCH_KEEP === '1'
const dir = reuse ?? mkdtempSync(join(process.env.CODIEMB_BENCH_DIR ?? tmpdir(), 'codiemb-train-data-bench-'))
const cleanUp = (): void => {
  if (keep) rmSync(join(dir, 'model'), {recursive: true, force: true})
  else rmSync(dir, {recursive: true, force: true})
}
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    cleanUp()
    process.exit(130)
  })
try {
  console.log(`load average at start: ${loadavg().map((x) => x.toFixed(2)).join(', ')} (${process.env.CODIEMB_BENCH_NOTE ?? 'other jobs may share this machine'})`)
  const file = join(dir, 'out', 'bench', 'train.ir-example.arrow')
  const made = join(dir, 'bench.json')
  let source: {rows: number; rowTextBytes: number}
  if (reuse) {
    source = JSON.parse(readFileSync(made, 'utf8')) as typeof source
    console.log(`reusing ${file} (${(statSync(file).size / GB).toFixed(2)} GB, ${source.rows.toLocaleString('en')} rows)`)
  } else {
    const input = join(dir, 'train.jsonl')
    let t0 = Date.now()
    const {bytes, lines, rowTextBytes} = writeFlagEmbeddingFile(input, targetBytes)
    console.log(`generated ${(bytes / GB).toFixed(2)} GB of FlagEmbedding JSON lines, ${lines.toLocaleString('en')} rows in ${((Date.now() - t0) / 1000).toFixed(0)} s`)

    t0 = Date.now()
    const prepared = child(
      `const {prepare} = await import(${JSON.stringify(join(src, 'data', 'prepare.js'))})
       const {builtinRegistry} = await import(${JSON.stringify(join(src, 'builtins.js'))})
       const r = await prepare({datasets: [{name: 'bench', reader: 'flagembedding-jsonl', task: 'ir', splits: {train: 'train.jsonl'}}]}, {registry: await builtinRegistry(), dataRoot: ${JSON.stringify(dir)}, out: ${JSON.stringify(join(dir, 'out'))}})
       console.log(JSON.stringify({rows: r.rows, maxRss: process.resourceUsage().maxRSS * 1024}))`,
      'prepare',
    )
    console.log(`prepared ${file}: ${(statSync(file).size / GB).toFixed(2)} GB, ${prepared.rows.toLocaleString('en')} rows in ${((Date.now() - t0) / 1000).toFixed(0)} s (peak RSS ${(prepared.maxRss / MB).toFixed(0)} MB)`)
    source = {rows: prepared.rows, rowTextBytes}
    if (keep) {
      rmSync(input)
      writeFileSync(made, JSON.stringify(source))
      console.log(`kept in ${dir} (CODIEMB_BENCH_REUSE=${dir} to train on it again)`)
    }
  }
  const fileBytes = statSync(file).size
  const {rowTextBytes} = source

  const config = {
    model: {init: {arch: 'bert', tokenizer: vocabDir, layers: 2, hidden: 32, heads: 2, intermediate: 64, maxPositions: 64, seed: 1}},
    output: join(dir, 'model'),
    data: [file],
    sampler: {name: 'dynamic', options: {batchSizes: {ir: BATCH}}},
    tasks: {ir: {losses: [{name: 'ir-infonce', options: {positives: 1, negatives: 7, temperature: 0.05}}], maxLength: {query: 16, passage: 32}}},
    epochs: 1,
    maxSteps: STEPS,
    logEvery: 1,
    seed: 7,
    checkpoint: {everyEpoch: false, everySteps: 0, keepLast: 0},
  }
  writeFileSync(join(dir, 'train.json'), JSON.stringify(config))
  const trained = child(
    `${probes}
     const [{builtinRegistry}, {selectBackend}, {normaliseTrainSection}, {runTraining}] = await Promise.all([
       import(${JSON.stringify(join(src, 'builtins.js'))}), import(${JSON.stringify(join(src, 'tensor', 'backend.js'))}),
       import(${JSON.stringify(join(src, 'train', 'config.js'))}), import(${JSON.stringify(join(src, 'train', 'run.js'))})])
     const registry = await builtinRegistry()
     await selectBackend(registry, ${JSON.stringify(backend)})
     const section = normaliseTrainSection(JSON.parse(readFileSync(${JSON.stringify(join(dir, 'train.json'))}, 'utf8')))
     const marks = []
     const start = performance.now()
     const startRead = rchar()
     let plan
     await runTraining(section, {registry, onEvent: (e) => { if (e.type === 'plan') plan = {at: performance.now(), read: rchar(), anon: status().RssAnon * 1024}; if (e.type === 'step') marks.push({step: e.step, at: performance.now(), read: rchar()}); if (process.env.CODIEMB_BENCH_VERBOSE) console.error(((performance.now() - start) / 1000).toFixed(1), JSON.stringify(e).slice(0, 160)) }})
     clearInterval(timer)
     sample()
     const first = marks[0], last = marks[marks.length - 1]
     console.log(JSON.stringify({dataStartup: (plan.at - start) / 1000, dataStartupRead: plan.read - startRead, planAnon: plan.anon, startup: (first.at - start) / 1000, startupRead: first.read - startRead, steps: marks.length,
       stepsPerSecond: (last.step - first.step) / ((last.at - first.at) / 1000), readPerStep: (last.read - first.read) / (last.step - first.step),
       maxRss: process.resourceUsage().maxRSS * 1024, peakAnon}))`,
    'train',
  )
  // The trainer's own reader on the same file: 20 batches of 32 random rows, verification split from row reads.
  const reads = child(
    `const {loadTrainingDataset, readRows, closeTrainingData} = await import(${JSON.stringify(join(src, 'train', 'data.js'))})
     const {Rng} = await import(${JSON.stringify(join(src, 'core', 'rng.js'))})
     const d = await loadTrainingDataset({path: ${JSON.stringify(file)}}, 7)
     const opened = {...d.rows.stats}
     const rng = new Rng(3)
     const batches = Array.from({length: ${STEPS}}, () => Array.from({length: ${BATCH}}, () => rng.int(d.rows.length)))
     let verify = 0, rowBytes = 0, textBytes = 0
     for (const rows of batches) {
       const before = {...d.rows.stats}
       const records = await readRows(d.rows, rows)
       const read = d.rows.stats.bytesRead - before.bytesRead
       const verified = d.rows.stats.verifiedBytes - before.verifiedBytes
       verify += verified
       rowBytes += read - verified
       for (const r of records) textBytes += [r.id, r.query, r.instruction, ...r.positives, ...r.negatives].reduce((s, t) => s + Buffer.byteLength(t), 0)
     }
     // Again: every record batch is checked by now, so these are the rows' reads alone.
     const again = d.rows.stats.bytesRead
     for (const rows of batches) await readRows(d.rows, rows)
     const steady = d.rows.stats.bytesRead - again
     await closeTrainingData([d])
     console.log(JSON.stringify({openBytes: opened.bytesRead, verifyPerStep: verify / ${STEPS}, rowsPerStep: rowBytes / ${STEPS}, steadyPerStep: steady / ${STEPS}, textPerStep: textBytes / ${STEPS}}))`,
    'row reads',
  )
  const batchText = BATCH * rowTextBytes
  console.log(`train (${backend} backend, tiny BERT 2×32, IR batches of ${BATCH} queries × (1 positive + 7 negatives), ${STEPS} steps, prefetch default):`)
  console.log(`  data start-up:  ${trained.dataStartup.toFixed(1)} s to the plan (data opened, checked, planned; no model yet), ${(trained.dataStartupRead / MB).toFixed(1)} MB read (config, footer, batch metadata, offsets, numeric columns); RssAnon then ${(trained.planAnon / MB).toFixed(0)} MB`)
  console.log(`  start-up:       ${trained.startup.toFixed(1)} s to the end of step 1; ${(trained.startupRead / MB).toFixed(1)} MB read before it (also the model's vocabulary and step 1's rows and first-read checksum checks, prefetch included)`)
  console.log(`  steps/s:        ${trained.stepsPerSecond.toFixed(2)} (steps 2–${STEPS})`)
  console.log(`  peak RSS:       ${(trained.maxRss / MB).toFixed(0)} MB; peak RssAnon ${(trained.peakAnon / MB).toFixed(0)} MB`)
  console.log(`  read per step:  ${(trained.readPerStep / MB).toFixed(2)} MB (every read of the process, steps 2–${STEPS}); the batch's own texts ≈ ${(batchText / 1024).toFixed(0)} KB`)
  console.log(`row reader alone (20 batches of ${BATCH} random rows):`)
  console.log(`  opening:        ${(reads.openBytes / MB).toFixed(1)} MB read (footer, record-batch metadata, offsets, numbers; file ${(fileBytes / MB).toFixed(0)} MB)`)
  console.log(`  per batch:      rows ${(reads.rowsPerStep / 1024).toFixed(0)} KB for ${(reads.textPerStep / 1024).toFixed(0)} KB of their text (factor ${(reads.rowsPerStep / reads.textPerStep).toFixed(2)}); first-read checksum checks ${(reads.verifyPerStep / MB).toFixed(1)} MB`)
  console.log(`  steady state:   ${(reads.steadyPerStep / 1024).toFixed(0)} KB per batch once its record batches are checked (factor ${(reads.steadyPerStep / reads.textPerStep).toFixed(2)})`)
  console.log(`  checksum checks read each record batch once: over an epoch of ${Math.floor(source.rows / BATCH).toLocaleString('en')} steps that is ${((fileBytes / Math.floor(source.rows / BATCH)) / 1024).toFixed(0)} KB per step`)
  console.log(`load average at end: ${loadavg().map((x) => x.toFixed(2)).join(', ')}`)
} finally {
  cleanUp()
}
