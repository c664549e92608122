/**
 * The `encoding` option of the text readers: in every text reader's options schema (and in no
 * columnar one), and honoured on the paths that decode a file as a stream of chunks rather than
 * lines — RFC 4180 CSV (quoted fields spanning lines) and one JSON array.
 */
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {prepare} from '../../../src/data/prepare.js'
import {readerOptionsSchema} from '../../../src/data/readers/options.js'
import {readAllRecords} from '../../../src/io/arrow-records.js'
import {BUILTINS} from '../../helpers/env.js'

/** GBK bytes of 你好 and 中文. */
const NIHAO = [0xc4, 0xe3, 0xba, 0xc3]
const ZHONGWEN = [0xd6, 0xd0, 0xce, 0xc4]
const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))))

describe('reader option encoding', () => {
  it('belongs to every text reader, defaulting to utf-8, and to no columnar reader', () => {
    for (const [name, schema] of Object.entries(readerOptionsSchema)) {
      const encoding = (schema.properties as Record<string, {default?: unknown}>).encoding
      if (name === 'parquet' || name === 'hf-arrow') assert.equal(encoding, undefined, name)
      else assert.equal(encoding?.default, 'utf-8', name)
    }
  })

  it('CSV with quoted fields across lines and one JSON array, both in GBK, read exactly; without it, the line is named', async () => {
    const root = mkdtempSync(join(tmpdir(), 'codiemb-enc-'))
    try {
      writeFileSync(join(root, 'p.csv'), bytes('t1,t2,s\n"', NIHAO, '\nworld",', ZHONGWEN, ',1\nx,"a ""q""",0\n'))
      writeFileSync(join(root, 'p.json'), bytes('[\n {"a": "', NIHAO, '", "b": "x", "s": 1},\n {"a": "y", "b": "', ZHONGWEN, '", "s": 0}\n]\n'))
      const csv = {name: 'csv', reader: 'delimited', task: 'sts' as const, labelRange: {values: [0, 1]}, splits: {train: 'p.csv'}, fields: {text1: 't1', text2: 't2', score: 's'}}
      const json = {name: 'json', reader: 'json', task: 'sts' as const, labelRange: {values: [0, 1]}, splits: {train: 'p.json'}, fields: {text1: 'a', text2: 'b', score: 's'}}
      const run = (ds: object) => prepare({datasets: [ds as never]}, {registry: BUILTINS, dataRoot: root, out: join(root, 'out')})
      await assert.rejects(run({...csv, options: {quoting: 'csv', header: true, delimiter: ','}}), /p\.csv:2: not valid utf-8 text: bytes c4 e3 at byte 2 of the line/)
      await assert.rejects(run({...json, options: {format: 'array'}}), /p\.json:2: not valid utf-8 text/)
      await run({...csv, options: {quoting: 'csv', header: true, delimiter: ',', encoding: 'gbk'}})
      await run({...json, options: {format: 'auto', encoding: 'GBK'}})
      const rows = await readAllRecords(join(root, 'out', 'csv', 'train.sts-pair.arrow'), 'sts-pair')
      assert.deepEqual(rows.map((r) => [r.text1, r.text2]), [['你好\nworld', '中文'], ['x', 'a "q"']])
      const arr = await readAllRecords(join(root, 'out', 'json', 'train.sts-pair.arrow'), 'sts-pair')
      assert.deepEqual(arr.map((r) => [r.text1, r.text2]), [['你好', 'x'], ['y', '中文']])
    } finally {
      rmSync(root, {recursive: true, force: true})
    }
  })
})
