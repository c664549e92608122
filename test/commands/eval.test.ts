import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {ArrowRecordWriter} from '../../src/io/arrow-records.js'
import {runTasks} from '../../src/eval/evaluate.js'
import {BEIR_TASKS} from '../../src/eval/benchmarks/beir.js'
import {CMTEB_TASKS} from '../../src/eval/benchmarks/cmteb.js'
import {shared, useTestBackend} from '../helpers/env.js'
import {HashingEncoder, SHARED_CMTEB_STS, SHARED_MORE_STS, writeSharedSts} from '../eval/fixtures.js'
import {runCommand} from '../eval/run-command.js'

let work: string
before(() => {
  work = mkdtempSync(join(tmpdir(), 'codiemb-evalcmd-'))
})
after(() => rmSync(work, {recursive: true, force: true}))

/** A SciFact slice as prepared Arrow files: `nQueries` judged queries, their relevant documents, and distractors. */
async function writeScifactSlice(scifact: string, out: string, nQueries: number, nDistractors: number): Promise<void> {
  const qrelLines = readFileSync(join(scifact, 'qrels', 'test.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'))
  const queryIds = [...new Set(qrelLines.map((l) => l[0]))].slice(0, nQueries)
  const judged = qrelLines.filter((l) => queryIds.includes(l[0]))
  const relevant = new Set(judged.map((l) => l[1]))
  const corpus = readFileSync(join(scifact, 'corpus.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as {_id: string; title: string; text: string})
  const docs = [...corpus.filter((d) => relevant.has(d._id)), ...corpus.filter((d) => !relevant.has(d._id)).slice(0, nDistractors)]
  const queries = readFileSync(join(scifact, 'queries.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as {_id: string; text: string}).filter((q) => queryIds.includes(q._id))
  mkdirSync(out, {recursive: true})
  const c = new ArrowRecordWriter(join(out, 'corpus.arrow'), 'corpus')
  for (const d of docs) c.write({id: d._id, title: d.title, text: d.text})
  await c.finish()
  const q = new ArrowRecordWriter(join(out, 'queries.arrow'), 'queries')
  for (const x of queries) q.write({id: x._id, text: x.text, instruction: ''})
  await q.finish()
  const r = new ArrowRecordWriter(join(out, 'qrels.arrow'), 'qrels')
  for (const [qid, did, score] of judged) r.write({query_id: qid, corpus_id: did, score: Number(score)})
  await r.finish()
}

describe('codiemb eval (fixture bert-tiny model)', () => {
  it('evaluates the seven C-MTEB STS sets and a user-defined SciFact retrieval task, writing TaskResults, summary and --json', async (t) => {
    const data = shared(t, 'data')
    const model = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
    if (!data || !model) return
    const dataDir = join(work, 'data')
    for (const spec of SHARED_CMTEB_STS) await writeSharedSts(data, dataDir, spec, 16)
    // ATEC's validation split too (its MTEB metadata lists validation and test); BQ's and STSB's are left absent
    await writeSharedSts(data, dataDir, SHARED_MORE_STS.find((s) => s.task === 'ATEC')!, 16)
    await writeScifactSlice(join(data, 'scifact'), join(dataDir, 'scifact-slice'), 8, 60)
    const config = join(work, 'eval.json')
    writeFileSync(
      config,
      JSON.stringify({
        eval: {
          dataDir,
          tasks: [{name: 'SciFactSlice', type: 'retrieval', split: 'test', dir: 'scifact-slice', languages: ['eng-Latn']}],
          batchSize: 16,
          maxLength: 48,
        },
      }),
    )
    const out = join(work, 'results')
    const events = join(work, 'events.ndjson')
    const stsNames = SHARED_CMTEB_STS.map((s) => s.task).join(',')
    const r = runCommand('eval', ['--model', model, '--config', config, '--tasks', `${stsNames},SciFactSlice`, '--out', out, '--backend', 'cpu', '--events', events, '--json'])
    assert.equal(r.status, 0, r.stderr + r.stdout)
    const result = r.json.result
    assert.equal(r.json.status, 0)
    assert.equal(result.model, 'model')
    assert.match(result.revision, /^[0-9a-f]{12}$/)
    assert.equal(Object.keys(result.tasks).length, 8)
    // a further metadata split that is absent is reported, never replaced, and fails nothing
    for (const task of ['BQ', 'STSB']) assert.ok(r.json.warnings.some((w: string) => w.startsWith(`${task}: split validation not scored`)), JSON.stringify(r.json.warnings))
    const summary = JSON.parse(readFileSync(join(result.dir, 'summary.json'), 'utf8'))
    assert.deepEqual(summary.unscored.map((u: {task: string; split: string}) => `${u.task}/${u.split}`), ['BQ/validation', 'STSB/validation'])
    // ATEC: both splits in one result file, as MTEB writes them; summary and --json use the benchmark's (test)
    const atec = JSON.parse(readFileSync(join(result.dir, 'ATEC.json'), 'utf8'))
    assert.deepEqual(Object.keys(atec.scores).sort(), ['test', 'validation'])
    assert.equal(atec.mteb_version, '1.39.7')
    assert.equal(summary.tasks.ATEC.split, 'test')
    assert.equal(summary.tasks.ATEC.main_score, atec.scores.test[0].main_score)
    assert.equal(summary.tasks.ATEC.splits.validation, atec.scores.validation[0].main_score)
    assert.equal(result.tasks.ATEC.split, 'test')
    // no local path in any result file unless --record-paths
    for (const file of result.files as string[]) {
      const text = readFileSync(file, 'utf8')
      assert.ok(!text.includes(work) && !text.includes(model) && !text.includes(process.cwd()), `${file} names a local path`)
    }
    assert.deepEqual(atec.codiemb.sources, ['ATEC/test.arrow'])
    assert.equal(summary.counts.sts, 7)
    assert.equal(summary.counts.ir, 1)
    assert.ok(Math.abs(summary.averages.overall - (summary.averages.sts * 7 + summary.averages.ir) / 8) < 1e-12)
    for (const spec of SHARED_CMTEB_STS) {
      const tr = JSON.parse(readFileSync(join(result.dir, `${spec.task}.json`), 'utf8'))
      assert.equal(tr.task_name, spec.task)
      assert.equal(tr.dataset_revision, CMTEB_TASKS.find((x) => x.name === spec.task)!.hf!.revision)
      const entry = tr.scores[spec.split][0]
      assert.ok(Number.isFinite(entry.cosine_spearman) && Math.abs(entry.cosine_spearman) <= 1)
      assert.deepEqual(entry.languages, ['cmn-Hans'])
      assert.equal(tr.codiemb.counts.pairs, 16)
      assert.match(tr.codiemb.prompt, /^Instruction: .+ Query: $/)
    }
    const ir = JSON.parse(readFileSync(join(result.dir, 'SciFactSlice.json'), 'utf8'))
    const irScores = ir.scores.test[0]
    assert.equal(irScores.main_score, irScores.ndcg_at_10)
    assert.equal(ir.codiemb.counts.queries, 8)
    assert.ok(irScores.recall_at_1000 === 1, 'every relevant document is in the corpus slice')
    const meta = JSON.parse(readFileSync(join(result.dir, 'model_meta.json'), 'utf8'))
    assert.equal(meta.embed_dim, 64)
    assert.ok(meta.n_parameters > 0)
    const ev = readFileSync(events, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    assert.equal(ev.filter((e) => e.type === 'eval-task').length, 9)
    assert.ok(ev.some((e) => e.type === 'eval-summary'))

    // second run: every embedding comes from the cache
    const again = runCommand('eval', ['--model', model, '--config', config, '--tasks', 'STSB,SciFactSlice', '--out', out, '--backend', 'cpu', '--json', '--record-paths'])
    assert.equal(again.status, 0, again.stderr)
    // --record-paths: the data files and the model directory as they are
    assert.deepEqual(JSON.parse(readFileSync(join(result.dir, 'STSB.json'), 'utf8')).codiemb.sources, [join(dataDir, 'STSB', 'test.arrow')])
    assert.equal(JSON.parse(readFileSync(join(result.dir, 'model_meta.json'), 'utf8')).reference, model)
    for (const task of Object.values(again.json.result.tasks) as {cache: {misses: number; hits: number}}[]) {
      assert.equal(task.cache.misses, 0)
      // STS: the distinct texts of both sides in one entry; retrieval: queries and corpus
      assert.ok(task.cache.hits >= 1)
    }
    assert.equal(again.json.result.tasks.STSB.main_score, result.tasks.STSB.main_score)
  })

  it('exits 2 naming what is missing: an unknown task, a task without data', (t) => {
    const model = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
    if (!model) return
    const unknown = runCommand('eval', ['--model', model, '--tasks', 'NoSuchTask', '--data-dir', work, '--backend', 'cpu', '--json'])
    assert.equal(unknown.status, 2)
    assert.match(unknown.json.message, /unknown task "NoSuchTask"/)
    const missing = runCommand('eval', ['--model', model, '--tasks', 'CovidRetrieval', '--data-dir', join(work, 'empty'), '--out', join(work, 'r2'), '--backend', 'cpu', '--json'])
    assert.equal(missing.status, 2, missing.stdout)
    assert.match(missing.json.message, /codiemb data pull C-MTEB\/CovidRetrieval --revision 1271c780/)
  })
})

describe('Hugging Face dataset directories (parquet)', () => {
  it('reads C-MTEB STS parquet and C-MTEB retrieval parquet with its separate -qrels dataset', async () => {
    await useTestBackend()
    const {parquetWriteBuffer} = await import('hyparquet-writer')
    const write = (file: string, columns: Record<string, unknown[]>) => {
      mkdirSync(join(file, '..'), {recursive: true})
      writeFileSync(file, Buffer.from(parquetWriteBuffer({columnData: Object.entries(columns).map(([name, data]) => ({name, data}))})))
    }
    const dataDir = join(work, 'hf')
    // C-MTEB/BQ as downloaded: data/<split>-*.parquet with sentence1, sentence2, score
    write(join(dataDir, 'C-MTEB', 'BQ', 'data', 'test-00000-of-00001.parquet'), {sentence1: ['花呗怎么还款', '借呗额度', '天气很好'], sentence2: ['花呗如何还款', '借呗的额度是多少', '我要贷款'], score: [1, 1, 0]})
    write(join(dataDir, 'C-MTEB', 'BQ', 'data', 'validation-00000-of-00001.parquet'), {sentence1: ['x'], sentence2: ['y'], score: [0]})
    // C-MTEB/VideoRetrieval: corpus/queries parquet; qrels in C-MTEB/VideoRetrieval-qrels
    write(join(dataDir, 'C-MTEB', 'VideoRetrieval', 'data', 'corpus-00000-of-00001.parquet'), {id: ['d1', 'd2', 'd3'], text: ['猫咪搞笑视频合集', '足球比赛精彩进球', '烹饪红烧肉教程']})
    write(join(dataDir, 'C-MTEB', 'VideoRetrieval', 'data', 'queries-00000-of-00001.parquet'), {id: ['q1', 'q2'], text: ['搞笑猫咪', '红烧肉怎么做']})
    write(join(dataDir, 'C-MTEB', 'VideoRetrieval-qrels', 'data', 'dev-00000-of-00001.parquet'), {qid: ['q1', 'q2'], pid: ['d1', 'd3'], score: [1, 1]})
    const tasks = CMTEB_TASKS.filter((x) => x.name === 'BQ' || x.name === 'VideoRetrieval')
    const evaluations = await runTasks(new HashingEncoder(), tasks, {dataDir, instructions: false})
    const bq = evaluations.find((e) => e.task.name === 'BQ' && e.split === 'test')!
    const video = evaluations.find((e) => e.task.name === 'VideoRetrieval')!
    assert.equal(bq.counts.pairs, 3)
    // BQ's metadata lists validation too: scored on its own file, as its own split
    const bqValidation = evaluations.find((e) => e.task.name === 'BQ' && e.split === 'validation')!
    assert.equal(bqValidation.counts.pairs, 1)
    assert.ok(bqValidation.sources[0].endsWith('validation-00000-of-00001.parquet'))
    assert.ok(bq.sources[0].endsWith('test-00000-of-00001.parquet'))
    assert.ok(bq.scores.cosine_spearman > 0)
    assert.equal(video.counts.queries, 2)
    assert.equal(video.counts.documents, 3)
    assert.equal(video.scores.ndcg_at_1, 1, 'character overlap ranks the right video first')
  })

  it('reads MTEB BEIR-style jsonl + qrels tsv (SciFact)', async (t) => {
    const scifact = shared(t, 'data', 'scifact')
    if (!scifact) return
    await useTestBackend()
    const task = {...BEIR_TASKS.find((x) => x.name === 'SciFact')!, localNames: [scifact]}
    const [ev] = await runTasks(new HashingEncoder(64), [task], {dataDir: work, limit: 5, topK: 10})
    assert.equal(ev.counts.documents, 5183)
    assert.equal(ev.counts.queries, 5)
  })
})
