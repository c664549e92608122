import {test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, readFileSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {runCommandJson} from '../helpers/cli.js'
import {readEvents} from '../helpers/events.js'
import {verdictLines, type ModelScores} from '../../src/quickstart/run.js'

test('codiemb quickstart: prepare, two checkpoints, delta merge, eval of 4 models, report (2 steps per checkpoint)', () => {
  const out = mkdtempSync(join(tmpdir(), 'codiemb-quickstart-'))
  try {
    const {envelope, status, stderr} = runCommandJson('quickstart.js', ['--out', out, '--steps', '2', '--eval-limit', '40', '--events', join(out, 'events.ndjson')])
    assert.equal(status, 0, stderr)
    assert.equal(envelope.status, 0)
    const r = envelope.result
    assert.equal(r.steps, 2)
    assert.deepEqual(r.models.map((m: any) => m.name), ['init', 'a-ir-heavy', 'b-sts-heavy', 'merged'])
    for (const m of r.models) {
      assert.ok(Number.isFinite(m.sts) && m.sts >= -100 && m.sts <= 100, `${m.name} sts ${m.sts}`)
      assert.ok(Number.isFinite(m.retrieval) && m.retrieval >= 0 && m.retrieval <= 100, `${m.name} retrieval ${m.retrieval}`)
      // each model's MTEB TaskResult files and summary
      for (const f of ['SNLI-STS.json', 'SNLI-Retrieval.json', 'summary.json', 'model_meta.json']) assert.ok(existsSync(join(m.resultsDir, f)), `${m.resultsDir}/${f}`)
      const sts = JSON.parse(readFileSync(join(m.resultsDir, 'SNLI-STS.json'), 'utf8'))
      assert.equal(sts.task_name, 'SNLI-STS')
      assert.ok(Math.abs(sts.scores.test[0].main_score * 100 - m.sts) < 1e-6)
      const ret = JSON.parse(readFileSync(join(m.resultsDir, 'SNLI-Retrieval.json'), 'utf8'))
      assert.ok(Math.abs(ret.scores.test[0].ndcg_at_10 * 100 - m.retrieval) < 1e-6)
    }
    // the trained checkpoints differ from the init and from each other: training really ran
    const scores = r.models.map((m: any) => `${m.sts}/${m.retrieval}`)
    assert.ok(new Set(scores).size >= 3, `scores of init, A, B, merged: ${scores.join(' ')}`)
    // checkpoints are sentence-transformers directories with weights
    for (const name of ['init', 'a-ir-heavy', 'b-sts-heavy', 'merged']) {
      const dir = join(out, 'models', name)
      assert.ok(existsSync(join(dir, 'model.safetensors')), `${dir}/model.safetensors`)
      assert.ok(existsSync(join(dir, 'vocab.txt')) || existsSync(join(dir, 'tokenizer.json')), `${dir}: tokenizer`)
    }
    const training = JSON.parse(readFileSync(join(out, 'models', 'a-ir-heavy', 'codiemb_training.json'), 'utf8'))
    assert.equal(training.summary.steps, 2)
    assert.equal(training.plan.sampler.name, 'dynamic')
    // the merge: delta fusion over the init, recorded in merge.json
    const merge = JSON.parse(readFileSync(join(out, 'models', 'merged', 'merge.json'), 'utf8'))
    assert.equal(merge.method, 'delta')
    assert.equal(merge.checkpoints.length, 2)
    assert.ok(merge.base, 'merge.json names the base')
    assert.equal(r.merge.meanWeights.length, 2)
    assert.ok(Math.abs(r.merge.meanWeights[0] + r.merge.meanWeights[1] - 1) < 1e-3, `weights ${r.merge.meanWeights}`)
    // prepared data from the bundled sample
    const manifest = JSON.parse(readFileSync(join(out, 'prepared', 'manifest.json'), 'utf8'))
    assert.deepEqual(Object.keys(manifest.datasets).sort(), ['snli-ir', 'snli-retrieval', 'snli-sts'])
    // the report charts the training losses, the evaluation and the merge
    assert.equal(r.report, join(out, 'report.html'))
    const html = readFileSync(r.report, 'utf8')
    for (const s of ['Training loss per task', 'SNLI-STS', 'SNLI-Retrieval', 'Merge: delta', 'quickstart-merged']) assert.ok(html.includes(s), `report.html lacks ${s}`)
    assert.equal(readdirSync(join(out, 'events')).length, 2)
    // the verdict names every trained model and both tasks; the result file matches the envelope
    assert.equal(r.verdict.length, 6)
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'quickstart.json'), 'utf8')).models, r.models)
    // every line is an event of data-schemas/events.schema.json
    const events = readEvents(join(out, 'events.ndjson'))
    assert.deepEqual(events.filter((e) => e.type === 'stage-done').map((e) => e.stage), ['prepare', 'init', 'train-a', 'train-b', 'merge', 'eval', 'report'])
  } finally {
    rmSync(out, {recursive: true, force: true})
  }
})

test('quickstart verdict: says what improved, what did not and what got worse', () => {
  const m = (name: string, sts: number, retrieval: number): ModelScores => ({name, path: name, sts, retrieval, resultsDir: name})
  const base = m('init', 10, 20)
  const lines = verdictLines(base, [base, m('a', 30, 20.5), m('b', 5, 40)])
  assert.deepEqual(lines, [
    'a: STS Spearman improved: 10.00 → 30.00 (+20.00)',
    'a: retrieval nDCG@10 did NOT improve: 20.00 → 20.50 (+0.50)',
    'b: STS Spearman got WORSE: 10.00 → 5.00 (-5.00)',
    'b: retrieval nDCG@10 improved: 20.00 → 40.00 (+20.00)',
  ])
})
