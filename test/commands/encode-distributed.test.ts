/**
 * `codiemb embed|eval|mine --nproc-per-node 2` on the torch backend (the real CLI, two local ranks,
 * Gloo): the same outputs as one process, to the byte (every slice is encoded by the same call on
 * the same texts; both runs get one CPU thread per process so the kernels sum in the same order).
 * A rank that dies makes the job fail, naming it.
 */
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {ArrowRecordWriter} from '../../src/io/arrow-records.js'
import {REPO_ROOT, shared} from '../helpers/env.js'
import {runCliAsync} from '../helpers/cli.js'
import {distributedAvailable} from '../helpers/dist.js'

const WORDS = 'the a cat dog bird fish horse runs sleeps eats jumps under over near big small red blue green old new house tree river hill road field'.split(' ')
// Both runs on one thread per process: the same kernels, the same order of sums.
const ENV = {CODIEMB_TORCH_THREADS: '1', CODIEMB_BACKEND: 'torch'}

/** A deterministic sentence generator (LCG). */
function sentences(seed: number) {
  let s = seed >>> 0
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32
  return (min: number, max: number) => Array.from({length: min + Math.floor(next() * (max - min + 1))}, () => WORDS[Math.floor(next() * WORDS.length)]).join(' ')
}

let work: string
before(() => {
  work = mkdtempSync(join(tmpdir(), 'codiemb-encode-dist-'))
})
after(() => rmSync(work, {recursive: true, force: true}))

/** More texts than one encoding slice (2048) in the STS set and the corpus, so both ranks encode. */
async function writeData(dir: string): Promise<void> {
  const say = sentences(7)
  writeFileSync(join(dir, 'texts.txt'), Array.from({length: 700}, () => say(2, 24)).join('\n') + '\n')
  mkdirSync(join(dir, 'sts'), {recursive: true})
  const sts = new ArrowRecordWriter(join(dir, 'sts', 'test.arrow'), 'sts-pair', {metadata: {'codiemb.dataset': 'toy-sts', 'codiemb.task': 'sts', 'codiemb.split': 'test', 'codiemb.instruction': ''}})
  for (let i = 0; i < 1100; i++) {
    const text1 = say(3, 12)
    const text2 = i % 3 === 0 ? text1 : say(3, 12)
    const raw = (i * 7) % 6
    sts.write({id: String(i), text1, text2, score: raw / 5, raw_score: raw, instruction: ''})
  }
  await sts.finish()
  mkdirSync(join(dir, 'ret'), {recursive: true})
  const docs = Array.from({length: 2100}, (_, i) => ({id: `d${i}`, title: i % 5 === 0 ? say(1, 3) : '', text: say(4, 20)}))
  const c = new ArrowRecordWriter(join(dir, 'ret', 'corpus.arrow'), 'corpus')
  for (const d of docs) c.write(d)
  await c.finish()
  const q = new ArrowRecordWriter(join(dir, 'ret', 'queries.arrow'), 'queries')
  const r = new ArrowRecordWriter(join(dir, 'ret', 'qrels.arrow'), 'qrels')
  const ir = new ArrowRecordWriter(join(dir, 'ir.arrow'), 'ir-example', {metadata: {'codiemb.dataset': 'toy-ir', 'codiemb.task': 'ir'}})
  for (let i = 0; i < 24; i++) {
    const doc = docs[(i * 83) % docs.length]!
    const query = doc.text.split(' ').slice(0, 4).join(' ')
    q.write({id: `q${i}`, text: query, instruction: ''})
    r.write({query_id: `q${i}`, corpus_id: doc.id, score: 1})
    ir.write({id: `q${i}`, query, instruction: i % 2 ? 'find the passage' : '', positives: [doc.text], negatives: [], positive_scores: null, negative_scores: null})
  }
  await Promise.all([q.finish(), r.finish(), ir.finish()])
}

/** The result files of an eval run without their timings. */
function scoresOf(dir: string): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.json') && n !== 'model_meta.json')) {
    const json = JSON.parse(readFileSync(join(dir, name), 'utf8'))
    out[name] = JSON.stringify(json, (k, v) => (k === 'evaluation_time' || k === 'date' || k === 'created' || k === 'time' ? undefined : v))
  }
  return out
}

describe('embed, eval and mine with --nproc-per-node 2 (torch, Gloo)', () => {
  it('embed writes the single-process file byte for byte', async (t) => {
    if (!(await distributedAvailable(t))) return
    const model = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
    if (!model) return
    if (!existsSync(join(work, 'texts.txt'))) await writeData(work)
    // batch 4 → chunks of 256 texts: 3 chunks, rank 1 has none in the second round
    const args = (out: string) => ['embed', '-m', model, '-i', join(work, 'texts.txt'), '-o', join(work, out), '--batch-size', '4', '--json']
    const events = join(work, 'embed-events.ndjson')
    const [one, two] = await Promise.all([
      runCliAsync(args('one.arrow'), {cwd: REPO_ROOT, env: ENV}),
      runCliAsync([...args('two.arrow'), '--nproc-per-node', '2', '--events', events], {cwd: REPO_ROOT, env: ENV}),
    ])
    assert.equal(one.status, 0, one.stderr + one.stdout)
    assert.equal(two.status, 0, two.stderr + two.stdout)
    assert.equal(two.json.result.worldSize, 2)
    // one event stream: rank 0's (the ranks share the command line, --events included)
    const types = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l).type)
    assert.deepEqual([types.filter((t) => t === 'backend').length, types.filter((t) => t === 'done').length], [1, 1], types.join(','))
    assert.equal(two.json.result.rows, 700)
    assert.equal(two.json.result.tokens, one.json.result.tokens, 'rank 0 counts the tokens of both ranks')
    assert.ok(readFileSync(join(work, 'two.arrow')).equals(readFileSync(join(work, 'one.arrow'))), 'the 2-rank embeddings file differs from the 1-process one')
  })

  it('eval scores a retrieval and an STS task as one process does; rank 0 alone writes results and cache; a second run is all cache hits', async (t) => {
    if (!(await distributedAvailable(t))) return
    const model = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
    if (!model) return
    if (!existsSync(join(work, 'texts.txt'))) await writeData(work)
    const config = join(work, 'eval.json')
    writeFileSync(config, JSON.stringify({eval: {dataDir: work, batchSize: 32, maxLength: 32, tasks: [
      {name: 'ToySts', type: 'sts', split: 'test', dir: 'sts', languages: ['eng-Latn']},
      {name: 'ToyRetrieval', type: 'retrieval', split: 'test', dir: 'ret', languages: ['eng-Latn']},
    ]}}))
    const args = (out: string) => ['eval', '-m', model, '-c', config, '--tasks', 'ToySts,ToyRetrieval', '--out', join(work, out), '--json']
    const [one, two] = await Promise.all([runCliAsync(args('res1'), {cwd: REPO_ROOT, env: ENV}), runCliAsync([...args('res2'), '--nproc-per-node', '2'], {cwd: REPO_ROOT, env: ENV})])
    assert.equal(one.status, 0, one.stderr + one.stdout)
    assert.equal(two.status, 0, two.stderr + two.stdout)
    const r1 = one.json.result
    const r2 = two.json.result
    assert.deepEqual(r2.files.map((f: string) => f.replace('res2', 'res1')), r1.files)
    assert.deepEqual(scoresOf(r2.dir), scoresOf(r1.dir))
    assert.ok(r1.tasks.ToySts.main_score !== 0 && r1.tasks.ToyRetrieval.main_score > 0)
    assert.equal(r2.tasks.ToyRetrieval.cache.misses, 2)
    // the cache entries (rank 0's) hold the single-process vectors, byte for byte
    const cache = (out: string) => readdirSync(join(work, out, '.embedding-cache')).filter((n) => n.endsWith('.f32')).sort()
    assert.deepEqual(cache('res2'), cache('res1'))
    assert.equal(cache('res1').length, 3)
    for (const name of cache('res1'))
      assert.ok(readFileSync(join(work, 'res2', '.embedding-cache', name)).equals(readFileSync(join(work, 'res1', '.embedding-cache', name))), `${name} differs`)
    // again with 2 ranks: rank 0 finds every entry and sends the vectors to rank 1; same scores
    const again = await runCliAsync([...args('res2'), '--nproc-per-node', '2'], {cwd: REPO_ROOT, env: ENV})
    assert.equal(again.status, 0, again.stderr + again.stdout)
    for (const task of ['ToySts', 'ToyRetrieval']) {
      assert.equal(again.json.result.tasks[task].cache.misses, 0)
      assert.equal(again.json.result.tasks[task].main_score, r1.tasks[task].main_score)
    }
  })

  it('mine writes the single-process file byte for byte', async (t) => {
    if (!(await distributedAvailable(t))) return
    const model = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
    if (!model) return
    if (!existsSync(join(work, 'texts.txt'))) await writeData(work)
    const args = (out: string) => ['mine', '-m', model, '-i', join(work, 'ir.arrow'), '--corpus', join(work, 'ret', 'corpus.arrow'), '-o', join(work, out), '-k', '3', '--skip-top', '1', '--max-length', '32', '--json']
    const [one, two] = await Promise.all([runCliAsync(args('mined1.arrow'), {cwd: REPO_ROOT, env: ENV}), runCliAsync([...args('mined2.arrow'), '--nproc-per-node', '2'], {cwd: REPO_ROOT, env: ENV})])
    assert.equal(one.status, 0, one.stderr + one.stdout)
    assert.equal(two.status, 0, two.stderr + two.stdout)
    assert.equal(two.json.result.minedNegatives, 24 * 3)
    assert.ok(readFileSync(join(work, 'mined2.arrow')).equals(readFileSync(join(work, 'mined1.arrow'))), 'the 2-rank mined file differs from the 1-process one')
  })

  it('a rank that dies makes the job fail at once, naming it; nothing is written', async (t) => {
    if (!(await distributedAvailable(t))) return
    const model = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
    if (!model) return
    const say = sentences(11)
    writeFileSync(join(work, 'many.txt'), Array.from({length: 40000}, () => say(8, 40)).join('\n') + '\n')
    const out = join(work, 'killed.arrow')
    const launcher = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'run.js'), 'embed', '-m', model, '-i', join(work, 'many.txt'), '-o', out, '--batch-size', '4', '--nproc-per-node', '2', '--json'], {
      cwd: REPO_ROOT,
      env: {...process.env, ...ENV},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    launcher.stdout.on('data', (d) => (stdout += d))
    const exited = new Promise<number | null>((resolve) => launcher.on('exit', (code) => resolve(code)))
    // rank 1: the launcher's child whose environment says RANK=1; killed once it has worked a while
    let rank1: number | undefined
    for (let i = 0; i < 200 && rank1 === undefined; i++) {
      await new Promise((r) => setTimeout(r, 100))
      rank1 = childWithRank(launcher.pid!, '1')
    }
    assert.ok(rank1, 'rank 1 never started')
    await new Promise((r) => setTimeout(r, 6000))
    process.kill(rank1, 'SIGKILL')
    const killedAt = Date.now()
    const code = await exited
    const seconds = (Date.now() - killedAt) / 1000
    assert.notEqual(code, 0)
    assert.match(JSON.parse(stdout).message, /rank 1 of 2 failed first \(killed by SIGKILL\)/)
    assert.ok(seconds < 30, `the job took ${seconds} s to end after rank 1 died`)
    assert.ok(!existsSync(out), 'a partial embeddings file was left')
  })
})

/** The pid of `parent`'s child process whose environment has RANK=`rank` (Linux /proc). */
function childWithRank(parent: number, rank: string): number | undefined {
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== parent) continue
      if (readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`RANK=${rank}`)) return Number(pid)
    } catch {
      // a process that ended meanwhile
    }
  }
  return undefined
}
