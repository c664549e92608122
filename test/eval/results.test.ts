/**
 * src/eval/results.ts with several splits per task: every scored split under its own scores.<split>,
 * the unscored ones named with their reason, and summary.json reporting each task's first split only
 * (never another split in its place).
 */
import assert from 'node:assert/strict'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import type {TaskEvaluation} from '../../src/eval/evaluate.js'
import {summarize, taskResultJson, writeResults} from '../../src/eval/results.js'
import type {TaskDefinition} from '../../src/eval/tasks.js'
import {splitsOf, taskSplits} from '../../src/eval/tasks.js'

const task = (name: string, splits: string[], type: 'sts' | 'retrieval' = 'sts'): TaskDefinition => ({name, type, mainScore: 'cosine_spearman', languages: [], ...splitsOf(splits)})

function evaluation(t: TaskDefinition, split: string, score: number): TaskEvaluation {
  return {task: {...t, split}, split, scores: {main_score: score, cosine_spearman: score}, evaluationTime: 1, counts: {pairs: 3}, sources: [`${split}.arrow`], prompt: '', cache: {hits: 0, misses: 1}, warnings: []}
}

describe('several splits per task', () => {
  it('splitsOf / taskSplits: one split, or a list whose first is the task\'s split', () => {
    assert.deepEqual(splitsOf('dev'), {split: 'dev'})
    assert.deepEqual(splitsOf(['dev', 'test', 'dev']), {split: 'dev', splits: ['dev', 'test']})
    assert.deepEqual(splitsOf(undefined), {split: 'test'})
    assert.deepEqual(taskSplits(task('A', ['validation', 'test'])), ['validation', 'test'])
    assert.deepEqual(taskSplits(task('B', ['test'])), ['test'])
  })

  it('a TaskResult holds every scored split, and names the unscored ones with their reason', () => {
    const a = task('A', ['validation', 'test'])
    const json = taskResultJson([evaluation(a, 'validation', 0.5), evaluation(a, 'test', 0.7)]) as any
    assert.deepEqual(Object.keys(json.scores), ['validation', 'test'])
    assert.equal(json.scores.test[0].main_score, 0.7)
    assert.equal(json.evaluation_time, 2)
    assert.deepEqual(Object.keys(json.codiemb.splits), ['validation', 'test'])
    const partial = taskResultJson([evaluation(a, 'validation', 0.5)], [{task: 'A', split: 'test', reason: 'no STS pairs found'}]) as any
    assert.deepEqual(Object.keys(partial.scores), ['validation'])
    assert.deepEqual(partial.codiemb.unscored_splits, {test: 'no STS pairs found'})
  })

  it('summary.json: each task by its first split; a task whose first split was not scored is left out, never represented by another', () => {
    const a = task('A', ['test', 'validation'])
    const b = task('B', ['test'])
    const s = summarize({name: 'm', revision: 'r'}, [evaluation(a, 'validation', 0.4), evaluation(b, 'test', 0.8)], [{task: 'A', split: 'test', reason: 'damaged'}])
    assert.deepEqual(Object.keys(s.tasks), ['B'])
    assert.equal(s.averages.sts, 0.8)
    assert.deepEqual(s.unscored, [{task: 'A', split: 'test', reason: 'damaged'}])
    const full = summarize({name: 'm', revision: 'r'}, [evaluation(a, 'test', 0.6), evaluation(a, 'validation', 0.4)])
    assert.deepEqual(full.tasks.A, {type: 'sts', split: 'test', main_score_name: 'cosine_spearman', main_score: 0.6, splits: {validation: 0.4}})
    assert.equal(full.unscored, undefined)
  })

  it('writeResults writes one file per task with all its splits', () => {
    const dir = mkdtempSync(join(tmpdir(), 'codiemb-results-'))
    try {
      const a = task('A', ['validation', 'test'])
      const out = writeResults(dir, {name: 'm', revision: 'r'}, [evaluation(a, 'validation', 0.5), evaluation(a, 'test', 0.7)])
      assert.deepEqual(out.files.map((f) => f.slice(out.dir.length + 1)), ['A.json', 'model_meta.json', 'summary.json'])
      assert.deepEqual(Object.keys(JSON.parse(readFileSync(join(out.dir, 'A.json'), 'utf8')).scores), ['validation', 'test'])
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})

describe('the benchmark\'s scored split and local paths', () => {
  it('summary.json reports a task by its scoredSplit (MTEB(cmn, v1) scores ATEC on test, not validation)', () => {
    const atec: TaskDefinition = {...task('ATEC', ['validation', 'test']), split: 'test', scoredSplit: 'test'}
    const evs = [evaluation(atec, 'validation', 0.5), evaluation(atec, 'test', 0.7)]
    const s = summarize({name: 'm', revision: 'r'}, evs)
    assert.equal(s.tasks.ATEC.split, 'test')
    assert.equal(s.tasks.ATEC.main_score, 0.7)
    assert.deepEqual(s.tasks.ATEC.splits, {validation: 0.5})
    const json = taskResultJson(evs) as any
    assert.equal(json.mteb_version, '1.39.7')
    assert.equal(json.codiemb.scored_split, 'test')
    // the scored split missing: the task is left out, validation never stands in
    assert.deepEqual(summarize({name: 'm', revision: 'r'}, [evs[0]], [{task: 'ATEC', split: 'test', reason: 'no data'}]).tasks, {})
  })

  it('writes no absolute path unless asked: sources relative to the data dir, no model directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'codiemb-paths-'))
    try {
      const data = join(dir, 'data')
      const a = task('A', ['test'])
      const ev = {...evaluation(a, 'test', 0.5), sources: [join(data, 'A', 'test.arrow')]}
      const unscored = [{task: 'A', split: 'dev', reason: `task A: no STS pairs found for split "dev". Looked in:\n  ${join(data, 'A')}`}]
      const model = {name: 'm', revision: 'r', source: join(dir, 'model')}
      const out = writeResults(join(dir, 'out'), model, [ev], unscored, {dataDir: data})
      for (const file of out.files) assert.ok(!readFileSync(file, 'utf8').includes(dir), `${file} names ${dir}`)
      const tr = JSON.parse(readFileSync(out.files[0], 'utf8'))
      assert.deepEqual(tr.codiemb.sources, [join('A', 'test.arrow')])
      assert.match(tr.codiemb.unscored_splits.dev, /Looked in:\n {2}A$/)
      const recorded = writeResults(join(dir, 'out2'), model, [ev], unscored, {dataDir: data, recordPaths: true})
      assert.deepEqual(JSON.parse(readFileSync(recorded.files[0], 'utf8')).codiemb.sources, ev.sources)
      assert.equal(JSON.parse(readFileSync(join(recorded.dir, 'model_meta.json'), 'utf8')).reference, model.source)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
