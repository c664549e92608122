/**
 * Every task of the pinned MTEB release's table (../shared/fixtures/mteb-tasks.json: dataset id,
 * revision, eval splits, languages, main score, score range, qrels source, the split the benchmark
 * scores) against codiemb's built-in benchmark definitions, field by field; and the version our
 * result files name.
 */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {describe, it} from 'node:test'
import {BUILTINS, shared} from '../../helpers/env.js'
import {scoredSplit, taskSplits, type BenchmarkImpl} from '../../../src/eval/tasks.js'
import {MTEB_VERSION} from '../../../src/eval/results.js'

interface TableTask {
  name: string
  group: string
  type: 'Retrieval' | 'STS'
  dataset_path: string
  revision: string
  eval_splits: string[]
  eval_langs: string[]
  main_score: string
  ignore_identical_ids?: boolean
  qrels_dataset_path?: string | null
  qrels_revision?: string | null
  min_score?: number
  max_score?: number
  benchmark: {name: string; eval_splits: string[]}
}

describe('built-in benchmarks against the pinned MTEB task table', () => {
  it('match every task of ../shared/fixtures/mteb-tasks.json field by field', async (t) => {
    const file = shared(t, 'fixtures', 'mteb-tasks.json')
    if (!file) return
    const table = JSON.parse(readFileSync(file, 'utf8')) as {mteb_version: string; tasks: TableTask[]}
    assert.equal(MTEB_VERSION, table.mteb_version, 'result files name the pinned MTEB version')
    const groups = [...new Set(table.tasks.map((x) => x.group))]
    const ours = new Map<string, BenchmarkImpl>()
    for (const g of groups) ours.set(g, await BUILTINS.load<BenchmarkImpl>('benchmark', g))
    const problems: string[] = []
    const check = (task: string, field: string, got: unknown, want: unknown) => {
      if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`${task}.${field}: codiemb ${JSON.stringify(got)}, MTEB ${JSON.stringify(want)}`)
    }
    for (const row of table.tasks) {
      const task = ours.get(row.group)!.tasks.find((x) => x.name === row.name)
      if (!task) {
        problems.push(`${row.name}: not in codiemb's ${row.group} benchmark`)
        continue
      }
      check(row.name, 'type', task.type, row.type === 'STS' ? 'sts' : 'retrieval')
      check(row.name, 'dataset_path', task.hf?.path, row.dataset_path)
      check(row.name, 'revision', task.hf?.revision, row.revision)
      check(row.name, 'eval_splits', taskSplits(task), row.eval_splits)
      assert.equal(row.benchmark.eval_splits.length, 1, `${row.name}: one scored split`)
      check(row.name, 'benchmark.eval_splits', scoredSplit(task), row.benchmark.eval_splits[0])
      check(row.name, 'main_score', task.mainScore, row.main_score)
      check(row.name, 'eval_langs', task.languages, row.eval_langs)
      if (row.type === 'Retrieval') {
        check(row.name, 'ignore_identical_ids', task.ignoreIdenticalIds ?? false, row.ignore_identical_ids ?? false)
        // no qrelsPath: the qrels are in the dataset's own repository (BEIR)
        if (row.qrels_dataset_path) check(row.name, 'qrels_dataset_path', task.hf?.qrelsPath ?? task.hf?.path, row.qrels_dataset_path)
        if (row.qrels_revision) check(row.name, 'qrels_revision', task.hf?.qrelsRevision, row.qrels_revision)
      } else {
        check(row.name, 'score range', task.scoreRange, [row.min_score, row.max_score])
      }
    }
    // nor does codiemb list a task the table lacks
    for (const [group, b] of ours) for (const x of b.tasks) if (!table.tasks.some((r) => r.group === group && r.name === x.name)) problems.push(`${group}/${x.name}: not in the table`)
    assert.deepEqual(problems, [])
  })
})
