/**
 * src/eval/task-files.ts: which files hold a split's data. A split's data is only ever its own:
 * labelled files of another split are never chosen, an unreadable file is reported as unreadable,
 * and the missing-data message lists what is there instead.
 */
import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {filesForSplit, missing, splitAliases, splitsOf, unreadable, unreadableFor, type ArrowInfo} from '../../src/eval/task-files.js'
import type {TaskDefinition} from '../../src/eval/tasks.js'

const root = '/d/ATEC'
const f = (name: string) => `${root}/${name}`

describe('filesForSplit', () => {
  it('picks the files named after the split (validation, valid and dev are one split), in alias order', () => {
    const files = [f('data/test-00000.parquet'), f('data/validation-00000.parquet'), f('data/train-00000.parquet')]
    assert.deepEqual(filesForSplit(files, 'test', root), [f('data/test-00000.parquet')])
    assert.deepEqual(filesForSplit(files, 'dev', root), [f('data/validation-00000.parquet')])
    assert.deepEqual(filesForSplit([f('dev.jsonl'), f('valid.jsonl')], 'valid', root), [f('valid.jsonl')])
    assert.deepEqual(splitAliases('Validation'), ['validation', 'dev', 'valid'])
  })

  it('never gives another split: a lone file named after another split is not the test split', () => {
    assert.deepEqual(filesForSplit([f('validation.sts-pair.arrow')], 'test', root), [])
    assert.deepEqual(filesForSplit([f('data/train-0.parquet'), f('data/dev-0.parquet')], 'test', root), [])
    // "latest" and "contest" are not "test"
    assert.deepEqual(filesForSplit([f('latest/pairs.arrow'), f('contest.arrow')], 'test', root), [])
  })

  it('metadata labels win over paths; a single file that names no split serves any split', () => {
    const label = (file: string) => ({[f('a.arrow')]: 'validation', [f('b.arrow')]: 'test'})[file]
    assert.deepEqual(filesForSplit([f('a.arrow'), f('b.arrow')], 'test', root, label), [f('b.arrow')])
    // a file whose metadata says validation is not test, whatever its name says
    assert.deepEqual(filesForSplit([f('test.arrow')], 'test', root, () => 'validation'), [])
    assert.deepEqual(filesForSplit([f('pairs.arrow')], 'test', root), [f('pairs.arrow')])
    assert.deepEqual(filesForSplit([f('pairs.arrow'), f('more.arrow')], 'test', root), [])
  })

  it('splitsOf names the splits present, from labels or paths', () => {
    assert.deepEqual(splitsOf([f('x/validation-0.parquet'), f('y.arrow'), f('z.arrow')], root, (file) => (file.endsWith('z.arrow') ? 'train' : undefined)), ['train', 'validation'])
  })
})

describe('unreadable files', () => {
  const infos: ArrowInfo[] = [
    {file: f('test.sts-pair.arrow'), error: 'not an Arrow IPC file: truncated'},
    {file: f('validation.sts-pair.arrow'), kind: 'sts-pair', split: 'validation'},
    {file: f('train.sts-pair.arrow'), error: 'not an Arrow IPC file: bad magic'},
    {file: f('pairs.arrow'), error: 'not an Arrow IPC file: empty'},
  ]

  it('those that may hold the split: named after it; when nothing was found, also those naming no split', () => {
    assert.deepEqual(unreadableFor(infos, 'test', root, true).map((i) => i.file), [f('test.sts-pair.arrow')])
    assert.deepEqual(unreadableFor(infos, 'test', root, false).map((i) => i.file), [f('test.sts-pair.arrow'), f('pairs.arrow')])
    assert.deepEqual(unreadableFor(infos, 'dev', root, true), [])
  })

  it('are reported with the reader\'s error, not as missing', () => {
    const task = {name: 'ATEC', type: 'sts', split: 'test', hf: {path: 'C-MTEB/ATEC', revision: 'abc'}} as TaskDefinition
    const e = unreadable(task, 'test', [infos[0]])
    assert.equal(e.exitCode, 2)
    assert.match(e.message, /^task ATEC, split "test": the data is there but cannot be read/)
    assert.ok(e.message.includes(`${f('test.sts-pair.arrow')}: not an Arrow IPC file: truncated`))
    assert.doesNotMatch(e.message, /not found|fetch it with/)
  })
})

describe('missing', () => {
  it('lists the places looked in, the splits there instead (never used), and the fetch command', () => {
    const task = {name: 'ATEC', type: 'sts', split: 'test', hf: {path: 'C-MTEB/ATEC', revision: 'abc'}} as TaskDefinition
    const e = missing(task, 'test', [root], 'STS pairs', ['validation', 'test'])
    assert.match(e.message, /no STS pairs found for split "test"\. Looked in:\n {2}\/d\/ATEC\n/)
    assert.match(e.message, /The data there is for split validation, which is never scored in place of "test"/)
    assert.match(e.message, /fetch it with: codiemb data pull C-MTEB\/ATEC --revision abc/)
  })
})
