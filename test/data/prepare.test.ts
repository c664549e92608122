import {test} from 'node:test'
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {readArrowMeta} from '../../src/io/arrow-records.js'
import {prepare, readManifest, type DatasetConfig} from '../../src/data/prepare.js'
import {CountHistogram, charLength} from '../../src/data/stats.js'
import {BUILTINS} from '../helpers/env.js'

function root(): string {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-prepare-'))
  writeFileSync(join(dir, 'a.tsv'), 'x\ty\t1\nx x\ty\t0\n')
  writeFileSync(join(dir, 'b.tsv'), 'p\tq\t5\nbad\tline\t9\n')
  return dir
}

const a: DatasetConfig = {name: 'a', reader: 'delimited', task: 'sts', labelRange: {values: [0, 1]}, splits: {test: 'a.tsv'}, instruction: 'Same?'}
const b: DatasetConfig = {name: 'b', reader: 'delimited', task: 'sts', labelRange: {min: 0, max: 5}, splits: {test: 'b.tsv'}}

test('a failing dataset leaves the output directory exactly as it was (no partial files, no staging folder)', async () => {
  const dir = root()
  const out = join(dir, 'out')
  try {
    await prepare({datasets: [a]}, {registry: BUILTINS, dataRoot: dir, out})
    const before = readFileSync(join(out, 'manifest.json'), 'utf8')
    const aFile = readFileSync(join(out, 'a', 'test.sts-pair.arrow'))
    writeFileSync(join(dir, 'a.tsv'), 'changed\ty\t1\n')
    await assert.rejects(prepare({datasets: [a, b]}, {registry: BUILTINS, dataRoot: dir, out, overwrite: true}), /b\.tsv:2: score: label 9 is outside the declared label range \[0, 5\]/)
    assert.deepEqual(readdirSync(out).sort(), ['.codiemb-output.json', 'a', 'manifest.json'])
    assert.deepEqual(readdirSync(dir).sort(), ['a.tsv', 'b.tsv', 'out'], 'no staging folder is left beside the output')
    assert.equal(readFileSync(join(out, 'manifest.json'), 'utf8'), before)
    assert.deepEqual(readFileSync(join(out, 'a', 'test.sts-pair.arrow')), aFile, 'dataset a was not replaced by the failed run')
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('the manifest lists every file with kind, rows and sha256, and later runs merge into it', async () => {
  const dir = root()
  const out = join(dir, 'out')
  try {
    const r1 = await prepare({datasets: [a]}, {registry: BUILTINS, dataRoot: dir, out})
    const r2 = await prepare({datasets: [b]}, {registry: BUILTINS, dataRoot: dir, out, skipInvalid: true})
    assert.equal(r1.rows, 2)
    assert.equal(r2.rows, 1)
    const m = readManifest(out)!
    assert.equal(m.format, 'codiemb-prepare-manifest')
    assert.deepEqual(m.files.map((f) => [f.path, f.kind, f.split, f.rows]), [
      ['a/test.sts-pair.arrow', 'sts-pair', 'test', 2],
      ['b/test.sts-pair.arrow', 'sts-pair', 'test', 1],
    ])
    for (const f of m.files) assert.equal(f.sha256, createHash('sha256').update(readFileSync(join(out, f.path))).digest('hex'))
    assert.deepEqual(Object.keys(m.datasets).sort(), ['a', 'b'])
    assert.equal(m.datasets.b.rejected, 1)
    assert.equal(m.datasets.a.sources[0].path, 'a.tsv')
    assert.equal(m.datasets.a.sources[0].sha256, createHash('sha256').update(readFileSync(join(dir, 'a.tsv'))).digest('hex'))
    const meta = await readArrowMeta(join(out, 'a/test.sts-pair.arrow'))
    assert.equal(meta.instruction, 'Same?')
    assert.equal(meta.metadata['codiemb.split'], 'test')
    assert.deepEqual(JSON.parse(meta.metadata['codiemb.label_range']), {min: 0, max: 1, values: [0, 1]})
    assert.ok(meta.version && meta.layout === '1')
    // Statistics: two pairs -> texts "x", "y", "x x", "y".
    const s = r1.datasets[0].stats['a/test.sts-pair.arrow']
    assert.deepEqual(s.textLength.text, {count: 4, min: 1, mean: 1.5, p50: 1, p90: 3, p99: 3, max: 3})
    assert.deepEqual(s.labels, {0: 1, 1: 1})
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('a dataset the output already holds is replaced only with overwrite; a folder its manifest does not list, never', async () => {
  const dir = root()
  const out = join(dir, 'out')
  try {
    await prepare({datasets: [a]}, {registry: BUILTINS, dataRoot: dir, out})
    const first = readFileSync(join(out, 'a', 'test.sts-pair.arrow'))
    writeFileSync(join(dir, 'a.tsv'), 'changed\ty\t1\n')
    await assert.rejects(prepare({datasets: [a]}, {registry: BUILTINS, dataRoot: dir, out}), /out already holds dataset a; pass --overwrite to replace it/)
    assert.deepEqual(readFileSync(join(out, 'a', 'test.sts-pair.arrow')), first)
    await prepare({datasets: [a]}, {registry: BUILTINS, dataRoot: dir, out, overwrite: true})
    assert.equal(readManifest(out)!.files[0].rows, 1, 'replaced by the new rows')
    mkdirSync(join(out, 'b'))
    writeFileSync(join(out, 'b', 'mine.txt'), 'a folder of my own')
    await assert.rejects(prepare({datasets: [b]}, {registry: BUILTINS, dataRoot: dir, out, overwrite: true, skipInvalid: true}), /out: b is not data codiemb prepared \(not in manifest.json\) and is never replaced/)
    assert.equal(readFileSync(join(out, 'b', 'mine.txt'), 'utf8'), 'a folder of my own')
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('a failed run creates no output folder; the other datasets of an output are carried into the new one unchanged', async () => {
  const dir = root()
  const out = join(dir, 'nested', 'out')
  try {
    await assert.rejects(prepare({datasets: [b]}, {registry: BUILTINS, dataRoot: dir, out}), /label 9 is outside/)
    assert.equal(existsSync(join(dir, 'nested', 'out')), false)
    assert.deepEqual(readdirSync(join(dir, 'nested')), [], 'and no staging folder beside it')
    await prepare({datasets: [a]}, {registry: BUILTINS, dataRoot: dir, out})
    writeFileSync(join(out, 'NOTES.md'), 'kept')
    const aFile = readFileSync(join(out, 'a', 'test.sts-pair.arrow'))
    await prepare({datasets: [b]}, {registry: BUILTINS, dataRoot: dir, out, skipInvalid: true})
    assert.deepEqual(readFileSync(join(out, 'a', 'test.sts-pair.arrow')), aFile)
    assert.equal(readFileSync(join(out, 'NOTES.md'), 'utf8'), 'kept')
    assert.deepEqual(readdirSync(out).sort(), ['.codiemb-output.json', 'NOTES.md', 'a', 'b', 'manifest.json'])
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('configuration errors: unknown reader, bad reader options, missing label range, task the reader cannot do, duplicate names', async () => {
  const dir = root()
  const out = join(dir, 'out')
  try {
    await assert.rejects(prepare({datasets: [{...a, reader: 'nope'}]}, {registry: BUILTINS, dataRoot: dir, out}), /unknown reader "nope"; registered readers: beir, codiemb-jsonl/)
    await assert.rejects(
      prepare({datasets: [{...a, options: {quoting: 'rfc', colums: 3}}]}, {registry: BUILTINS, dataRoot: dir, out}),
      (e: Error) =>
        /invalid options for reader "delimited" of dataset "a" \(2 problems\)/.test(e.message) &&
        /\/prepare\/datasets\/0\/options\/quoting: expected one of "none", "csv", got "rfc"/.test(e.message) &&
        /\/prepare\/datasets\/0\/options\/colums: unknown key/.test(e.message),
    )
    await assert.rejects(prepare({datasets: [{...a, labelRange: undefined}]}, {registry: BUILTINS, dataRoot: dir, out}), /labelRange: an STS dataset must declare its label range/)
    await assert.rejects(prepare({datasets: [{...a, reader: 'flagembedding-jsonl'}]}, {registry: BUILTINS, dataRoot: dir, out}), /reader flagembedding-jsonl cannot prepare task "sts" \(it prepares ir\)/)
    await assert.rejects(prepare({datasets: [a, {...b, name: 'a'}]}, {registry: BUILTINS, dataRoot: dir, out}), /dataset "a" is declared twice/)
    await assert.rejects(prepare({datasets: [{...a, splits: {test: 'missing.tsv'}}]}, {registry: BUILTINS, dataRoot: dir, out}), /dataset a, split "test": file not found: .*missing\.tsv/)
    assert.equal(existsSync(join(out, 'manifest.json')), false)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('statistics helpers: nearest-rank percentiles and code-point lengths', () => {
  const h = new CountHistogram()
  for (let i = 1; i <= 100; i++) h.add(i)
  assert.deepEqual(h.summary(), {count: 100, min: 1, mean: 50.5, p50: 50, p90: 90, p99: 99, max: 100})
  assert.equal(charLength('一架飞机'), 4)
  assert.equal(charLength('a😀b'), 3)
  assert.equal(new CountHistogram().summary(), undefined)
})
