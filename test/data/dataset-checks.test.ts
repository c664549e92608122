/**
 * src/data/dataset-checks.ts through prepare: duplicate ids and dangling qrels stay rejects;
 * contradicting qrels grades and 0-row outputs become warnings naming the dataset, split, and lines.
 */
import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {prepare} from '../../src/data/prepare.js'
import {DatasetChecks} from '../../src/data/dataset-checks.js'
import {BUILTINS} from '../helpers/env.js'

function beir(qrels: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'codiemb-checks-'))
  mkdirSync(join(root, 'b', 'qrels'), {recursive: true})
  writeFileSync(join(root, 'b', 'corpus.jsonl'), '{"_id":"d1","text":"one"}\n{"_id":"d2","text":"two"}\n')
  writeFileSync(join(root, 'b', 'queries.jsonl'), '{"_id":"q1","text":"first"}\n{"_id":"q2","text":"second"}\n')
  for (const [split, text] of Object.entries(qrels)) writeFileSync(join(root, 'b', 'qrels', `${split}.tsv`), `query-id\tcorpus-id\tscore\n${text}`)
  return root
}

const run = (root: string, splits: string[], skipInvalid = false) =>
  prepare({datasets: [{name: 'b', reader: 'beir', task: 'eval', path: 'b', splits}]}, {registry: BUILTINS, dataRoot: root, out: join(root, 'out'), skipInvalid})

describe('dataset checks', () => {
  it('warns about qrels that grade a pair twice differently (per split, with both lines); equal repeats are fine', async () => {
    const root = beir({test: 'q1\td1\t1\nq2\td2\t1\nq1\td1\t2\nq1\td1\t1\nq2\td2\t1\n', dev: 'q1\td1\t1\nq1\td1\t1\n'})
    try {
      const r = await run(root, ['test', 'dev'])
      assert.deepEqual(r.datasets[0].warnings, [
        'dataset b, split test: 2 qrels rows give a (query, document) pair another grade than an earlier row, e.g. query "q1", document "d1": 1 at b/qrels/test.tsv:2, 2 at b/qrels/test.tsv:4 (evaluation uses the last grade given)',
      ])
      assert.equal(r.rows, 4 + 5 + 2, 'every qrels row is kept')
      const manifest = JSON.parse(readFileSync(join(root, 'out', 'manifest.json'), 'utf8'))
      assert.equal(manifest.datasets.b.warnings, undefined, 'warnings are reported, not stored in the manifest')
    } finally {
      rmSync(root, {recursive: true, force: true})
    }
  })

  it('warns about every output file that receives no row, and says whether rows were rejected', async () => {
    const root = beir({test: 'q1\td9\t1\n', dev: ''})
    try {
      const r = await run(root, ['test', 'dev'], true)
      assert.deepEqual(r.datasets[0].warnings, ['dataset b: b/test.qrels.arrow, b/dev.qrels.arrow have 0 rows (1 rows rejected, 0 unused)'])
      const reject = JSON.parse(readFileSync(join(root, 'out', 'b', 'rejects.jsonl'), 'utf8'))
      assert.match(reject.reason, /corpus_id: "d9" is not a known document \(dangling qrels\)/)
      assert.equal(typeof reject.raw, 'string', 'a reject from prepare\'s own checks carries the row too')
    } finally {
      rmSync(root, {recursive: true, force: true})
    }
  })

  it('duplicate corpus and query ids stay rejects', () => {
    const checks = new DatasetChecks('x', ['corpus', 'queries', 'qrels'])
    const at = {file: 'c.jsonl', line: 1}
    const doc = {ok: true as const, value: {id: 'd1', title: '', text: 't'}}
    assert.equal(checks.check('corpus', null, at, doc).ok, true)
    assert.deepEqual(checks.check('corpus', null, {file: 'c.jsonl', line: 2}, doc), {ok: false, reason: 'id: duplicate corpus id "d1"'})
    assert.deepEqual(checks.check('qrels', 'test', at, {ok: true, value: {query_id: 'q1', corpus_id: 'd1', score: 1}}), {ok: false, reason: 'query_id: "q1" is not a known query (dangling qrels)'})
    assert.deepEqual(checks.warnings([{path: 'x/corpus.arrow', rows: 1}], {rejected: 0, unused: 0}), [])
  })
})
