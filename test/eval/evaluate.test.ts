import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {evaluateTasks, runTasks} from '../../src/eval/evaluate.js'
import {writeResults} from '../../src/eval/results.js'
import {TaskDataError} from '../../src/eval/task-data.js'
import {CMTEB_TASKS} from '../../src/eval/benchmarks/cmteb.js'
import {BEIR_TASKS} from '../../src/eval/benchmarks/beir.js'
import {shared, useTestBackend, BUILTINS} from '../helpers/env.js'
import {HashingEncoder, SHARED_CMTEB_STS, writeSharedSts} from './fixtures.js'

let work: string
before(() => {
  work = mkdtempSync(join(tmpdir(), 'codiemb-eval-'))
})
after(() => rmSync(work, {recursive: true, force: true}))

function assertTaskResult(file: string, task: string, split: string, mainScoreName: string): Record<string, unknown> {
  const r = JSON.parse(readFileSync(file, 'utf8'))
  assert.equal(r.task_name, task)
  assert.equal(typeof r.mteb_version, 'string')
  assert.equal(typeof r.evaluation_time, 'number')
  const entry = r.scores[split]?.[0]
  assert.ok(entry, `${file}: scores.${split}[0] missing`)
  assert.equal(entry.hf_subset, 'default')
  assert.ok(Array.isArray(entry.languages))
  assert.ok(Number.isFinite(entry.main_score))
  assert.equal(entry.main_score, entry[mainScoreName])
  return entry
}

describe('evaluation engine, end to end on ../shared data', () => {
  it('evaluates the seven C-MTEB STS sets (prepared Arrow) and writes MTEB TaskResult files', async (t) => {
    const data = shared(t, 'data')
    if (!data) return
    await useTestBackend()
    const dataDir = join(work, 'prepared')
    for (const spec of SHARED_CMTEB_STS) assert.ok((await writeSharedSts(data, dataDir, spec, 300)) > 0)
    const tasks = CMTEB_TASKS.filter((x) => x.type === 'sts')
    assert.equal(tasks.length, 7)
    const encoder = new HashingEncoder()
    const cacheDir = join(work, 'cache')
    const evaluations = await runTasks(encoder, tasks, {dataDir, cacheDir})
    assert.equal(evaluations.length, 7)
    for (const ev of evaluations) {
      assert.equal(ev.counts.pairs, 300, ev.task.name)
      assert.ok(ev.scores.cosine_spearman > -1 && ev.scores.cosine_spearman < 1)
      assert.ok(ev.prompt.startsWith('Instruction: ') && ev.prompt.endsWith(' Query: '), ev.prompt)
    }
    // character overlap predicts paraphrase on LCQMC: a real signal, not noise
    assert.ok(evaluations.find((e) => e.task.name === 'LCQMC')!.scores.cosine_spearman > 0.2)
    assert.ok(encoder.seenPrefixes.every((p) => p && p.startsWith('Instruction: ')))
    const out = writeResults(join(work, 'results'), {name: 'hashing', revision: 'abc123'}, evaluations)
    for (const task of tasks) {
      const entry = assertTaskResult(join(out.dir, `${task.name}.json`), task.name, task.split, 'cosine_spearman')
      for (const k of ['cosine_pearson', 'euclidean_spearman', 'manhattan_spearman']) assert.ok(k in entry, k)
    }
    assert.ok(existsSync(join(out.dir, 'model_meta.json')))
    assert.equal(out.summary.counts.sts, 7)
    assert.ok(out.summary.averages.sts !== null && out.summary.averages.ir === null)

    // a second run is served from the embedding cache: no text is re-encoded
    const calls = encoder.encoded
    const again = await evaluateTasks(encoder, ['AFQMC', tasks[1]], {registry: BUILTINS, dataDir, cacheDir})
    assert.equal(encoder.encoded, calls)
    assert.equal(again.AFQMC.main_score, evaluations[0].scores.main_score)
  })

  it('runs exact retrieval on SciFact (BEIR layout) and writes a TaskResult with every cutoff', async (t) => {
    const scifact = shared(t, 'data', 'scifact')
    if (!scifact) return
    await useTestBackend()
    const task = {...BEIR_TASKS.find((x) => x.name === 'SciFact')!, localNames: [scifact]}
    const before = tf.memory().numTensors
    const [ev] = await runTasks(new HashingEncoder(), [task], {dataDir: work, limit: 100, corpusChunkSize: 2048, geometry: true})
    assert.equal(tf.memory().numTensors, before)
    assert.equal(ev.counts.queries, 100)
    assert.equal(ev.counts.documents, 5183)
    // hashed character counts are all non-negative: a strongly anisotropic space
    assert.ok(ev.geometry!.isotropy_mean_cosine > 0.2 && ev.geometry!.isotropy_mean_cosine < 1)
    for (const m of ['ndcg', 'map', 'recall', 'precision', 'mrr']) for (const k of [1, 3, 5, 10, 20, 100, 1000]) assert.ok(`${m}_at_${k}` in ev.scores, `${m}_at_${k}`)
    // lexical overlap finds SciFact evidence well above chance (chance nDCG@10 is ~0.002)
    assert.ok(ev.scores.ndcg_at_10 > 0.1, `nDCG@10 ${ev.scores.ndcg_at_10}`)
    assert.ok(ev.scores.recall_at_1000 >= ev.scores.recall_at_100)
    const out = writeResults(join(work, 'results'), {name: 'hashing', revision: 'abc123'}, [ev])
    assertTaskResult(join(out.dir, 'SciFact.json'), 'SciFact', 'test', 'ndcg_at_10')
  })

  it('names the files it looked for and the fetch command when a task has no data', async () => {
    const task = CMTEB_TASKS.find((x) => x.name === 'T2Retrieval')!
    await assert.rejects(runTasks(new HashingEncoder(), [task], {dataDir: work}), (e: Error) => {
      assert.ok(e instanceof TaskDataError)
      assert.match(e.message, /T2Retrieval/)
      assert.match(e.message, /codiemb data pull C-MTEB\/T2Retrieval --revision 8731a845/)
      assert.match(e.message, /C-MTEB\/T2Retrieval-qrels/)
      assert.ok(e.message.includes(join(work, 'T2Retrieval')))
      return true
    })
  })
})

describe('evaluation on data prepared by codiemb prepare', () => {
  it('finds the shipped recipes\' outputs for the seven C-MTEB STS sets and SciFact', async (t) => {
    const data = shared(t, 'data')
    if (!data) return
    await useTestBackend()
    const {prepare} = await import('../../src/data/prepare.js')
    const {parse} = await import('yaml')
    const {REPO_ROOT} = await import('../helpers/env.js')
    const datasets = ['afqmc', 'atec', 'bq', 'lcqmc', 'pawsx', 'qbqtc', 'stsb-zh', 'scifact'].flatMap(
      (r) => (parse(readFileSync(join(REPO_ROOT, 'recipes', 'prepare', `${r}.yaml`), 'utf8')) as {prepare: {datasets: {name: string}[]}}).prepare.datasets,
    ).filter((d) => d.name !== 'scifact-ir')
    const out = join(work, 'prepared-by-prepare')
    await prepare({datasets} as never, {registry: BUILTINS, dataRoot: data, out})
    const tasks = [...CMTEB_TASKS.filter((x) => x.type === 'sts'), BEIR_TASKS.find((x) => x.name === 'SciFact')!]
    const evaluations = await runTasks(new HashingEncoder(64), tasks, {dataDir: out, limit: 40, topK: 100})
    // ATEC, BQ and STSB are scored on validation too (their MTEB eval splits; the recipes prepare both)
    assert.equal(evaluations.length, 11)
    assert.deepEqual(evaluations.filter((e) => e.split === 'validation').map((e) => e.task.name), ['AFQMC', 'ATEC', 'BQ', 'STSB'])
    for (const ev of evaluations) {
      assert.ok(ev.sources.every((s) => s.startsWith(out) && s.endsWith('.arrow')), `${ev.task.name}: ${ev.sources}`)
      if (ev.task.type === 'sts') {
        assert.equal(ev.counts.pairs, 40)
        assert.ok(ev.sources[0].includes(ev.task.split === 'validation' ? 'valid' : 'test'), ev.sources[0])
      }
    }
    const scifact = evaluations.find((e) => e.task.name === 'SciFact')!
    assert.equal(scifact.counts.documents, 5183)
    assert.ok(scifact.sources.some((s) => s.endsWith('test.qrels.arrow')))
  })
})
