/** Row filters: comparisons on source fields (or record fields), failing rows counted as unused by reason. */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {readAllRecords} from '../../src/io/arrow-records.js'
import {prepare} from '../../src/data/prepare.js'
import {checkFilters, failure} from '../../src/data/row-filter.js'
import {BUILTINS} from '../helpers/env.js'

test('failure: numbers compare numerically, strings as strings, missing fields pass only != and not in', () => {
  assert.equal(failure({field: 'x', op: '==', value: 1}, '1.0'), undefined)
  assert.equal(failure({field: 'x', op: '==', value: 'news'}, 'news'), undefined)
  assert.match(failure({field: 'x', op: '==', value: 'news'}, 'gov')!, /filter x == "news": not met/)
  assert.equal(failure({field: 'x', op: '>=', value: 3}, ' 3.5 '), undefined)
  assert.match(failure({field: 'x', op: '>=', value: 3}, '-')!, /not a number/)
  assert.equal(failure({field: 'x', op: 'not in', value: ['-']}, undefined), undefined)
  assert.match(failure({field: 'x', op: 'in', value: [0, 1]}, undefined)!, /not met/)
  assert.throws(() => checkFilters([{field: 'x', op: 'in', value: 1}], 'ds'), /ds.filter\[0\].value: "in" compares with a list of values/)
  assert.throws(() => checkFilters([{field: 'x', op: '<', value: 'a'}], 'ds'), /compares numbers/)
})

test('filter on a source column the mapping does not use (genre), and on a column number', async () => {
  const root = mkdtempSync(join(tmpdir(), 'codiemb-filter-'))
  try {
    writeFileSync(join(root, 'a.jsonl'), ['{"s1":"a","s2":"b","label":"1","genre":"news"}', '{"s1":"c","s2":"d","label":"0","genre":"gov"}', '{"s1":"e","s2":"f","label":"0","genre":"news"}'].join('\n'))
    writeFileSync(join(root, 'b.tsv'), 'a\tb\t1\tx\nc\td\t0\ty\n')
    const r = await prepare(
      {
        datasets: [
          {name: 'j', reader: 'json', task: 'sts', labelRange: {values: [0, 1]}, splits: {dev: 'a.jsonl'}, fields: {text1: 's1', text2: 's2', score: 'label'}, filter: [{field: 'genre', op: '==', value: 'news'}]},
          {name: 't', reader: 'delimited', task: 'sts', labelRange: {values: [0, 1]}, splits: {dev: 'b.tsv'}, filter: [{field: 4, op: '!=', value: 'y'}, {field: 'score', op: '>', value: 0}]},
        ],
      },
      {registry: BUILTINS, dataRoot: root, out: join(root, 'out')},
    )
    const [j, t] = r.datasets
    assert.deepEqual((await readAllRecords(join(root, 'out', 'j', 'dev.sts-pair.arrow'), 'sts-pair')).map((x) => x.text1), ['a', 'e'])
    assert.deepEqual(j.unusedReasons, {'filter genre == "news": not met': 1})
    assert.equal(t.rows, 1)
    assert.deepEqual(t.unusedReasons, {'filter column 4 != "y": not met': 1})
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})
