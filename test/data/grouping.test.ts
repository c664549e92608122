/**
 * Grouping a flat labelled QA file (TrecQA/WikiQA layout: qtext,label,atext with a header, RFC 4180
 * quoting) into IR training examples with only the labelled positives, and into a retrieval
 * evaluation set that the evaluation engine scores. Every input row is accounted for.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync, readdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {readAllRecords} from '../../src/io/arrow-records.js'
import {prepare, type DatasetConfig} from '../../src/data/prepare.js'
import {runTasks} from '../../src/eval/evaluate.js'
import {taskFromConfig} from '../../src/eval/tasks.js'
import {BUILTINS, useTestBackend} from '../helpers/env.js'
import {HashingEncoder} from '../eval/fixtures.js'

// q1's rows are split in two runs (rows 2-3 and row 7); q3 has no positive; row 8 has no label.
const QA =
  'qtext,label,atext\n' +
  'what is the capital of france,1,"Paris is the capital of France, and its largest city."\n' +
  'what is the capital of france,0,"Lyon is a city in France."\n' +
  'who wrote hamlet,1,"Hamlet was written by William Shakespeare."\n' +
  'who wrote hamlet,0,"Hamlet is a ""tragedy"" set in Denmark."\n' +
  'how tall is everest,0,"Everest is in the Himalaya."\n' +
  'what is the capital of france,0,"Marseille is a port city."\n' +
  'who wrote hamlet,,"no label"\n'

const qaDataset = (task: 'ir' | 'eval', group: DatasetConfig['group'] = {}): DatasetConfig => ({
  name: 'qa',
  reader: 'delimited',
  task,
  splits: {test: 'qa.csv'},
  fields: {text1: 'qtext', text2: 'atext', score: 'label'},
  options: {delimiter: ',', quoting: 'csv', header: true},
  group,
})

function setup(): string {
  const root = mkdtempSync(join(tmpdir(), 'codiemb-group-'))
  writeFileSync(join(root, 'qa.csv'), QA)
  return root
}

for (const order of ['any', 'consecutive'] as const) {
  test(`group (order ${order}): IR examples hold only the labelled positives; the rest are hard negatives; every row accounted for`, async () => {
    const root = setup()
    try {
      const r = await prepare({datasets: [qaDataset('ir', {order})]}, {registry: BUILTINS, dataRoot: root, out: join(root, 'out'), skipInvalid: true})
      const d = r.datasets[0]
      const rows = await readAllRecords(join(root, 'out', 'qa', 'test.ir-example.arrow'), 'ir-example')
      const byQuery = Object.fromEntries(rows.map((x) => [x.query, x]))
      assert.deepEqual(byQuery['who wrote hamlet'].positives, ['Hamlet was written by William Shakespeare.'])
      assert.deepEqual(byQuery['who wrote hamlet'].negatives, ['Hamlet is a "tragedy" set in Denmark.'])
      assert.equal(byQuery['how tall is everest'], undefined)
      assert.equal(d.rejected, 1) // the row without a label
      if (order === 'any') {
        assert.equal(rows.length, 2)
        assert.deepEqual(byQuery['what is the capital of france'].negatives, ['Lyon is a city in France.', 'Marseille is a port city.'])
        assert.deepEqual(d.grouped, {pairs: 6, queries: 3, queriesWithoutPositive: 1, positives: 2, negatives: 3})
      } else {
        // the late Marseille row forms its own run: a query without a positive, warned about
        assert.equal(rows.length, 2)
        assert.deepEqual(byQuery['what is the capital of france'].negatives, ['Lyon is a city in France.'])
        assert.ok(d.warnings.some((w) => w.includes('1 queries reappear after their rows ended') && w.includes('qa.csv:7')), d.warnings.join('\n'))
        assert.equal(d.grouped!.queriesWithoutPositive, 2)
      }
      assert.equal(d.unusedReasons['query has no positive candidate'], order === 'any' ? 1 : 2)
      assert.ok(d.warnings.some((w) => /queries have no positive candidate/.test(w)), d.warnings.join('\n'))
      // input rows = rows in examples + unused + rejected
      const inExamples = rows.reduce((s, x) => s + x.positives.length + x.negatives.length, 0)
      assert.equal(inExamples + d.unused + d.rejected, 7)
      assert.ok(!readdirSync(join(root, 'out', 'qa')).some((f) => f.startsWith('.')), 'spill files removed')
    } finally {
      rmSync(root, {recursive: true, force: true})
    }
  })
}

test('group, task eval: corpus of distinct passages with stable ids, queries with a positive, qrels; the evaluation engine scores it', async () => {
  const root = setup()
  try {
    const r = await prepare({datasets: [qaDataset('eval')]}, {registry: BUILTINS, dataRoot: root, out: join(root, 'out'), skipInvalid: true})
    const d = r.datasets[0]
    const corpus = await readAllRecords(join(root, 'out', 'qa', 'corpus.arrow'), 'corpus')
    const queries = await readAllRecords(join(root, 'out', 'qa', 'queries.arrow'), 'queries')
    const qrels = await readAllRecords(join(root, 'out', 'qa', 'test.qrels.arrow'), 'qrels')
    assert.equal(corpus.length, 6)
    assert.ok(corpus.every((c) => /^d[0-9a-f]{16}$/.test(c.id)))
    assert.deepEqual(queries.map((q) => q.text).sort(), ['what is the capital of france', 'who wrote hamlet'])
    assert.equal(qrels.length, 2)
    assert.ok(qrels.every((q) => q.score === 1))
    assert.equal(d.grouped!.queriesWithoutPositive, 1)
    assert.equal(d.rows, 6 + 2 + 2)
    assert.equal(d.unused + qrels.length + d.rejected, 7)
    // the same passage gets the same id in another run
    const again = await prepare({datasets: [qaDataset('eval')]}, {registry: BUILTINS, dataRoot: root, out: join(root, 'out2'), skipInvalid: true})
    assert.equal(again.rows, d.rows)
    assert.deepEqual((await readAllRecords(join(root, 'out2', 'qa', 'corpus.arrow'), 'corpus')).map((c) => c.id), corpus.map((c) => c.id))
    await useTestBackend()
    const [ev] = await runTasks(new HashingEncoder(64), [taskFromConfig({name: 'qa', type: 'retrieval', split: 'test'})], {dataDir: join(root, 'out')})
    assert.equal(ev.counts.queries, 2)
    assert.equal(ev.counts.documents, 6)
    assert.ok(Number.isFinite(ev.scores.ndcg_at_10) && ev.scores.ndcg_at_10 > 0)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('group with `by` (a question id column) and a score threshold; a grouped dataset of task sts is refused', async () => {
  const root = mkdtempSync(join(tmpdir(), 'codiemb-group-'))
  writeFileSync(join(root, 'scored.jsonl'), ['{"qid":"7","q":"cheap flights","p":"Book cheap flights","s":2}', '{"qid":"7","q":"cheap flights!","p":"Hotel deals","s":0.5}', '{"qid":"8","q":"weather","p":"Rain tomorrow","s":1.5}'].join('\n'))
  try {
    const ds: DatasetConfig = {name: 'm', reader: 'json', task: 'ir', splits: {train: 'scored.jsonl'}, fields: {text1: 'q', text2: 'p', score: 's'}, group: {by: 'qid', positive: {min: 1.5}, order: 'consecutive'}}
    const r = await prepare({datasets: [ds]}, {registry: BUILTINS, dataRoot: root, out: join(root, 'out')})
    const rows = await readAllRecords(join(root, 'out', 'm', 'train.ir-example.arrow'), 'ir-example')
    assert.deepEqual(rows.map((x) => [x.query, x.positives, x.negatives]), [
      ['cheap flights', ['Book cheap flights'], ['Hotel deals']],
      ['weather', ['Rain tomorrow'], []],
    ])
    assert.equal(r.rows, 2)
    await assert.rejects(prepare({datasets: [{...ds, task: 'sts', labelRange: {min: 0, max: 2}}]}, {registry: BUILTINS, dataRoot: root, out: join(root, 'o2')}), /group: grouping makes IR examples/)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('group: one row stands behind each text of an example (a text given as negative, then positive, then again)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'codiemb-group-'))
  writeFileSync(join(root, 'dup.tsv'), 'q\tA\t0\nq\tA\t1\nq\tA\t1\nq\tB\t0\nq\tB\t0\n')
  try {
    const r = await prepare(
      {datasets: [{name: 'g', reader: 'delimited', task: 'ir', splits: {train: 'dup.tsv'}, fields: {text1: 1, text2: 2, score: 3}, group: {}}]},
      {registry: BUILTINS, dataRoot: root, out: join(root, 'out')},
    )
    const rows = await readAllRecords(join(root, 'out', 'g', 'train.ir-example.arrow'), 'ir-example')
    assert.deepEqual(rows.map((x) => [x.positives, x.negatives]), [[['A'], ['B']]])
    const d = r.datasets[0]
    assert.deepEqual(d.unusedReasons, {'candidate is also a positive of the query': 1, 'candidate given twice for the query': 2})
    assert.equal(2 + d.unused, 5)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})
