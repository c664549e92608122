/**
 * Several files per split: a list or a glob, read in order, each row keeping its own file:line in
 * errors and in rejects.jsonl; a pattern matching nothing or a file given twice is an error.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {readAllRecords} from '../../src/io/arrow-records.js'
import {prepare, type DatasetConfig} from '../../src/data/prepare.js'
import {splitPaths} from '../../src/data/split-files.js'
import {BUILTINS} from '../helpers/env.js'

function dataRoot(files: Record<string, string>): string {
  // glob characters in the data root itself are taken literally
  const root = mkdtempSync(join(tmpdir(), 'codiemb-split[files]*-'))
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(root, name, '..'), {recursive: true})
    writeFileSync(join(root, name), content)
  }
  return root
}

const run = (root: string, ds: Partial<DatasetConfig>, skipInvalid = false) =>
  prepare({datasets: [{name: 'd', ...ds} as DatasetConfig]}, {registry: BUILTINS, dataRoot: root, out: join(root, 'out'), skipInvalid})

test('splitPaths: lists in order, globs sorted, ** across folders; no match and duplicates are errors', () => {
  const root = dataRoot({'a/x2.txt': '', 'a/x1.txt': '', 'a/y.txt': '', 'a/deep/x3.txt': '', 'b.txt': ''})
  try {
    assert.deepEqual(splitPaths(['b.txt', 'a/x?.txt'], root, 's'), [join(root, 'b.txt'), join(root, 'a/x1.txt'), join(root, 'a/x2.txt')])
    assert.deepEqual(splitPaths('a/**/x*.txt', root, 's'), [join(root, 'a/deep/x3.txt'), join(root, 'a/x1.txt'), join(root, 'a/x2.txt')])
    assert.deepEqual(splitPaths('a/[xy]1.txt', root, 's'), [join(root, 'a/x1.txt')])
    assert.throws(() => splitPaths('a/z*.txt', root, 'where'), /^DataError: where: pattern "a\/z\*\.txt" matches no file/)
    assert.throws(() => splitPaths(['a/x1.txt', 'a/x*.txt'], root, 'where'), /x1\.txt is listed twice/)
    assert.deepEqual(splitPaths('../x*.txt', join(root, 'a', 'deep'), 's'), [join(root, 'a/x1.txt'), join(root, 'a/x2.txt')])
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('a split of three files (SICK-R test = train + trial + test) reads all of them, in order, with each file:line in rejects', async () => {
  const header = 'pair_ID\tsentence_A\tsentence_B\trelatedness_score\tentailment_judgment\n'
  const root = dataRoot({
    'SICK_train.txt': header + '1\tA dog runs.\tA dog is running.\t4.5\tENTAILMENT\n2\tA man eats.\tA man sleeps.\tx\tNEUTRAL\n',
    'SICK_trial.txt': header + '3\tKids play.\tChildren play.\t4.9\tENTAILMENT\n',
    'SICK_test_annotated.txt': header + '4\tA cat sits.\tA cat is sitting.\t4.8\tENTAILMENT\n',
  })
  try {
    const r = await run(
      root,
      {
        reader: 'delimited',
        task: 'sts',
        labelRange: {min: 1, max: 5},
        splits: {test: ['SICK_train.txt', 'SICK_trial.txt', 'SICK_test_annotated.txt']},
        fields: {id: 'pair_ID', text1: 'sentence_A', text2: 'sentence_B', score: 'relatedness_score'},
        options: {header: true},
      },
      true,
    )
    assert.equal(r.rows, 3)
    assert.equal(r.rejected, 1)
    const rows = await readAllRecords(join(root, 'out', 'd', 'test.sts-pair.arrow'), 'sts-pair')
    assert.deepEqual(rows.map((x) => x.id), ['1', '3', '4'])
    assert.deepEqual(r.datasets[0].sources.map((s) => s.path), ['SICK_train.txt', 'SICK_trial.txt', 'SICK_test_annotated.txt'])
    const reject = JSON.parse(readFileSync(join(root, 'out', 'd', 'rejects.jsonl'), 'utf8'))
    assert.equal(reject.file, 'SICK_train.txt')
    assert.equal(reject.line, 3)
    // without --skip-invalid the error names the file and line
    await assert.rejects(
      prepare({datasets: [{name: 'e', reader: 'delimited', task: 'sts', labelRange: {min: 1, max: 5}, splits: {test: 'SICK_*.txt'}, fields: {text1: 'sentence_A', text2: 'sentence_B', score: 'relatedness_score'}, options: {header: true}}]}, {registry: BUILTINS, dataRoot: root, out: join(root, 'out2')}),
      (e: Error) => e.message.startsWith(`${join(root, 'SICK_train.txt')}:3: score: expected a number, got "x"`),
    )
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})
