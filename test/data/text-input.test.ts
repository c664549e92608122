import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {readJsonArray, readLines} from '../../src/data/text-input.js'

test('lines: BOM dropped, CRLF and a missing final newline handled, numbers count every line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-text-'))
  try {
    const f = join(dir, 'a.txt')
    writeFileSync(f, '\ufeffone\r\ntwo\n\nfour')
    const got = []
    for await (const l of readLines(f)) got.push([l.line, l.text])
    assert.deepEqual(got, [
      [1, 'one'],
      [2, 'two'],
      [3, ''],
      [4, 'four'],
    ])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('JSON array: elements spanning read chunks (> 1 MiB), nested values, scalars, line numbers of each element', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-text-'))
  try {
    const f = join(dir, 'a.json')
    const big = 'x'.repeat(1_500_000) // longer than one read chunk
    const text = `[\n {"a": "${big}", "b": [1, {"c": "]},"}]},\n {"a": "two\\n\\"quoted\\""},\n 3, "s,]", null\n]\n`
    writeFileSync(f, text)
    const items = []
    for await (const it of readJsonArray(f)) items.push(it)
    assert.equal(items.length, 5)
    assert.equal((items[0].value as {a: string}).a.length, big.length)
    assert.deepEqual((items[0].value as {b: unknown}).b, [1, {c: ']},'}])
    assert.deepEqual(items.slice(1).map((i) => [i.at.line, i.value]), [
      [3, {a: 'two\n"quoted"'}],
      [4, 3],
      [4, 's,]'],
      [4, null],
    ])
    writeFileSync(f, '[{"a": 1} {"b": 2}]')
    await assert.rejects(async () => {
      for await (const _ of readJsonArray(f)) void _
    }, new RegExp(`${f.replace(/[.]/g, '\\.')}:1: malformed JSON array: expected "," or "]" after an array element, found "\\{"`))
    writeFileSync(f, '[{"a": 1},\n')
    await assert.rejects(async () => {
      for await (const _ of readJsonArray(f)) void _
    }, /:2: malformed JSON array: the file ends before the closing "\]"/)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
