/** The delimited reader's header handling: default false with a warning, auto detection. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {readAllRecords} from '../../../src/io/arrow-records.js'
import {prepare, type DatasetConfig} from '../../../src/data/prepare.js'
import {looksLikeHeader} from '../../../src/data/readers/delimited.js'
import {BUILTINS} from '../../helpers/env.js'

test('looksLikeHeader: SICK and "score" headers yes; STS-B, C-MTEB and Chinese text rows no', () => {
  assert.ok(looksLikeHeader(['pair_ID', 'sentence_A', 'sentence_B', 'relatedness_score', 'entailment_judgment']))
  assert.ok(looksLikeHeader(['sentence 1', 'sentence 2', 'score'], ['A dog.', 'A cat.', '3.5']))
  assert.ok(!looksLikeHeader(['main-captions', 'MSRvid', '2012test', '0001', '5.000', 'A plane is taking off.', 'An air plane is taking off.']))
  assert.ok(!looksLikeHeader(['蚂蚁借呗等额还款可以换成先息后本吗', '借呗有先息到期还本吗', '0'], ['a', 'b', '1']))
  assert.ok(!looksLikeHeader(['what is a dog', 'a dog is an animal'], ['x', 'y']))
})

test('header false (default) warns when the first line looks like a header; auto reads it as one', async () => {
  const root = mkdtempSync(join(tmpdir(), 'codiemb-delim-'))
  writeFileSync(join(root, 'ir.tsv'), 'query\tpositive\nwhat is a dog\ta dog is an animal\n')
  writeFileSync(join(root, 'sts.tsv'), 'sentence1\tsentence2\tscore\nA dog.\tA cat.\t3.5\n')
  try {
    const ds: DatasetConfig = {name: 'd', reader: 'delimited', task: 'ir', splits: {train: 'ir.tsv'}, fields: {query: 1, positives: 2}}
    const r = await prepare({datasets: [ds]}, {registry: BUILTINS, dataRoot: root, out: join(root, 'out')})
    assert.equal(r.rows, 2)
    assert.ok(r.datasets[0].warnings.some((w) => w.includes('ir.tsv:1: the first line looks like a header ("query", "positive") but is read as data')), r.datasets[0].warnings.join('\n'))
    const auto = await prepare({datasets: [{...ds, options: {header: 'auto'}}]}, {registry: BUILTINS, dataRoot: root, out: join(root, 'out'), overwrite: true})
    assert.equal(auto.rows, 1)
    assert.deepEqual(auto.datasets[0].warnings, [])
    const sts = await prepare(
      {datasets: [{name: 's', reader: 'delimited', task: 'sts', labelRange: {min: 0, max: 5}, splits: {test: 'sts.tsv'}, options: {header: 'auto'}}]},
      {registry: BUILTINS, dataRoot: root, out: join(root, 'out2')},
    )
    assert.deepEqual((await readAllRecords(join(root, 'out2', 's', 'test.sts-pair.arrow'), 'sts-pair')).map((x) => x.raw_score), [3.5])
    assert.equal(sts.rows, 1)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})
