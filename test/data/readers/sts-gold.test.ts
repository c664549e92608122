/**
 * The sts-gold reader on the SemEval STS layout: STS.input.<name>.txt (tab-separated sentences with
 * quotes, no CSV quoting) + STS.gs.<name>.txt (blank = unscored), several sources in one test set.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {readAllRecords} from '../../../src/io/arrow-records.js'
import {prepare, type DatasetConfig} from '../../../src/data/prepare.js'
import {BUILTINS} from '../../helpers/env.js'

export function writeSemEval(root: string): void {
  mkdirSync(join(root, 'sts15'), {recursive: true})
  writeFileSync(join(root, 'sts15', 'STS.input.answers-forums.txt'), 'He said "yes.\tHe agreed "fully".\nA b c.\tX y z.\nFoo bar.\tBaz qux.\n')
  writeFileSync(join(root, 'sts15', 'STS.gs.answers-forums.txt'), '4.2\n\n0.4\n')
  writeFileSync(join(root, 'sts15', 'STS.input.headlines.txt'), 'Cats sleep.\tA cat sleeps.\nDogs bark.\n')
  writeFileSync(join(root, 'sts15', 'STS.gs.headlines.txt'), '5\n3\n')
}

const ds = (splits: DatasetConfig['splits']): DatasetConfig => ({name: 'sts15', reader: 'sts-gold', task: 'sts', labelRange: {min: 0, max: 5}, splits})

test('sts-gold: pairs joined with gold line by line; blank gold unscored, quotes kept, several sources in one split', async () => {
  const root = mkdtempSync(join(tmpdir(), 'codiemb-stsgold-'))
  writeSemEval(root)
  try {
    const r = await prepare({datasets: [ds({test: 'sts15/STS.input.*.txt'})]}, {registry: BUILTINS, dataRoot: root, out: join(root, 'out'), skipInvalid: true})
    const rows = await readAllRecords(join(root, 'out', 'sts15', 'test.sts-pair.arrow'), 'sts-pair')
    assert.deepEqual(rows.map((x) => [x.id, x.text1, x.text2, Math.round(x.raw_score * 1000) / 1000]), [
      ['answers-forums:1', 'He said "yes.', 'He agreed "fully".', 4.2],
      ['answers-forums:3', 'Foo bar.', 'Baz qux.', 0.4],
      ['headlines:1', 'Cats sleep.', 'A cat sleeps.', 5],
    ])
    const d = r.datasets[0]
    assert.deepEqual(d.unusedReasons, {'unscored pair (blank gold line)': 1})
    assert.equal(d.rejected, 1)
    const reject = JSON.parse(readFileSync(join(root, 'out', 'sts15', 'rejects.jsonl'), 'utf8'))
    assert.deepEqual([reject.file, reject.line, reject.reason], ['sts15/STS.input.headlines.txt', 2, 'wrong column count: expected at least 2 fields, got 1'])
    assert.equal(d.rows + d.unused + d.rejected, 5) // 3 + 2 pair lines
    assert.deepEqual(d.sources.map((s) => s.path), ['sts15/STS.input.answers-forums.txt', 'sts15/STS.gs.answers-forums.txt', 'sts15/STS.input.headlines.txt', 'sts15/STS.gs.headlines.txt'])
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('sts-gold: a missing gold file, and files of different lengths, are errors naming the file', async () => {
  const root = mkdtempSync(join(tmpdir(), 'codiemb-stsgold-'))
  writeSemEval(root)
  writeFileSync(join(root, 'sts15', 'STS.input.short.txt'), 'a\tb\nc\td\n')
  writeFileSync(join(root, 'sts15', 'STS.gs.short.txt'), '1\n')
  writeFileSync(join(root, 'sts15', 'STS.input.nogold.txt'), 'a\tb\n')
  try {
    const opts = {registry: BUILTINS, dataRoot: root, out: join(root, 'out')}
    await assert.rejects(prepare({datasets: [ds({test: 'sts15/STS.input.nogold.txt'})]}, opts), /gold file of STS\.input\.nogold\.txt not found: .*STS\.gs\.nogold\.txt/)
    await assert.rejects(prepare({datasets: [ds({test: 'sts15/STS.input.short.txt'})]}, opts), (e: Error) =>
      e.message.startsWith(`${join(root, 'sts15', 'STS.input.short.txt')}:2: parallel files differ in length: ${join(root, 'sts15', 'STS.gs.short.txt')} ended`),
    )
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})
