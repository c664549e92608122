/**
 * The nli reader's json and delimited formats: CLUE OCNLI/CMNLI JSON lines and NLI TSV files with a
 * label map, into STS pairs or IR triplets; "-" and unmapped labels counted as unused.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {readAllRecords} from '../../../src/io/arrow-records.js'
import {prepare, type DatasetConfig} from '../../../src/data/prepare.js'
import {BUILTINS} from '../../helpers/env.js'
import {OCNLI_LINES} from './fixtures.js'


async function run(root: string, ds: Partial<DatasetConfig>) {
  return prepare({datasets: [{name: 'd', reader: 'nli', ...ds} as DatasetConfig]}, {registry: BUILTINS, dataRoot: root, out: join(root, 'out'), overwrite: true})
}

test('nli json (CLUE OCNLI): STS pairs through the label map; "-" and unknown labels unused; filter on genre', async () => {
  const root = mkdtempSync(join(tmpdir(), 'codiemb-nli-'))
  writeFileSync(join(root, 'dev.json'), OCNLI_LINES)
  try {
    const r = await run(root, {task: 'sts', labelRange: {values: [0, 0.5, 1]}, splits: {dev: 'dev.json'}, options: {format: 'json'}})
    const rows = await readAllRecords(join(root, 'out', 'd', 'dev.sts-pair.arrow'), 'sts-pair')
    assert.deepEqual(rows.map((x) => [x.id, x.raw_score]), [['0', 1], ['1', 0], ['2', 0.5], ['4', 1], ['5', 0]])
    assert.deepEqual(r.datasets[0].unusedReasons, {'label "-": no gold label (annotators disagreed)': 1, 'label "maybe" is not in options.labels': 1})
    assert.equal(r.rows + r.datasets[0].unused, 7)
    // numbers as labels, only news
    const f = await run(root, {
      task: 'sts',
      labelRange: {min: 0, max: 2},
      splits: {dev: 'dev.json'},
      options: {format: 'json', labels: {entailment: 2, neutral: 1, contradiction: 0}},
      filter: [{field: 'genre', op: '==', value: 'news'}],
    })
    assert.deepEqual((await readAllRecords(join(root, 'out', 'd', 'dev.sts-pair.arrow'), 'sts-pair')).map((x) => x.raw_score), [2, 0, 1])
    assert.equal(f.datasets[0].unusedReasons['filter genre == "news": not met'], 2)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('nli json: IR triplets, entailment positive and contradiction hard negative per premise', async () => {
  const root = mkdtempSync(join(tmpdir(), 'codiemb-nli-'))
  writeFileSync(join(root, 'train.json'), OCNLI_LINES)
  try {
    const r = await run(root, {task: 'ir', splits: {train: 'train.json'}, options: {format: 'json'}})
    const rows = await readAllRecords(join(root, 'out', 'd', 'train.ir-example.arrow'), 'ir-example')
    assert.deepEqual(rows.map((x) => [x.query, x.positives, x.negatives]), [
      ['他们正在看电影', ['他们在看东西'], ['他们在睡觉']],
      ['今天下雨', ['外面是湿的'], ['阳光明媚']],
    ])
    assert.equal(r.datasets[0].unusedReasons['neutral pair (IR uses entailment and contradiction)'], 1)
    assert.equal(r.datasets[0].unused, 3)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('nli delimited: a TSV with a header and numeric labels (0 entailment, 1 neutral, 2 contradiction)', async () => {
  const root = mkdtempSync(join(tmpdir(), 'codiemb-nli-'))
  writeFileSync(join(root, 'mnli.tsv'), 'premise\thypothesis\tlabel\nA man sleeps.\tA person rests.\t0\nA man sleeps.\tA man runs.\t2\nA man sleeps.\tHe dreams.\t1\n')
  try {
    const labels = {'0': 1, '1': 0.5, '2': 0}
    const r = await run(root, {task: 'ir', splits: {train: 'mnli.tsv'}, fields: {text1: 'premise', text2: 'hypothesis', score: 'label'}, options: {format: 'delimited', header: true, labels}})
    const rows = await readAllRecords(join(root, 'out', 'd', 'train.ir-example.arrow'), 'ir-example')
    assert.deepEqual(rows.map((x) => [x.query, x.positives, x.negatives]), [['A man sleeps.', ['A person rests.'], ['A man runs.']]])
    assert.equal(r.datasets[0].unused, 1)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('nli senteval: a "-" label (no gold label) is unused, not rejected', async () => {
  const root = mkdtempSync(join(tmpdir(), 'codiemb-nli-'))
  mkdirSync(join(root, 'snli'))
  writeFileSync(join(root, 'snli', 's1.dev'), 'A man.\nA man.\n')
  writeFileSync(join(root, 'snli', 's2.dev'), 'A person.\nA woman.\n')
  writeFileSync(join(root, 'snli', 'labels.dev'), 'entailment\n-\n')
  try {
    const r = await run(root, {task: 'sts', labelRange: {values: [0, 0.5, 1]}, path: 'snli', splits: ['dev']})
    assert.equal(r.rows, 1)
    assert.deepEqual(r.datasets[0].unusedReasons, {'label "-": no gold label (annotators disagreed)': 1})
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})
