/**
 * Loading prepared training files (src/train/data-file.ts, data.ts): what `codiemb prepare` wrote
 * loads with its row numbers and content digest; a file that breaks its layout, its manifest entry or
 * its label range is refused naming the file and rows; a file without checksums is checked against
 * manifest.json or loaded with a warning; texts that are only white space are refused as batches
 * are assembled.
 */
import assert from 'node:assert/strict'
import {copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, it} from 'node:test'
import {createHash} from 'node:crypto'
import {Float32, Utf8} from 'apache-arrow'
import {prepare, readManifest} from '../../src/data/prepare.js'
import {ArrowRecordWriter, readAllRecords, type StsPairRecord} from '../../src/io/arrow-records.js'
import {batchTexts, closeTrainingData, loadTrainingDataset, PAPER_INSTRUCTIONS, readRows, type RowSource} from '../../src/train/data.js'
import {Rng} from '../../src/core/rng.js'
import {BUILTINS} from '../helpers/env.js'
import {writeArrowColumns, writeWithoutChecksums} from '../helpers/arrow-files.js'

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-datafile-'))
  try {
    await f(dir)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

/** Prepares `lines` (text1 TAB text2 TAB score, labels 0–5) as dataset `name` into `<dir>/out`; returns the sts-pair file. */
async function prepared(dir: string, name: string, lines: string[]): Promise<string> {
  writeFileSync(join(dir, `${name}.tsv`), lines.join('\n') + '\n')
  await prepare({datasets: [{name, reader: 'delimited', task: 'sts', labelRange: {min: 0, max: 5}, splits: {train: `${name}.tsv`}}]}, {registry: BUILTINS, dataRoot: dir, out: join(dir, 'out')})
  return join(dir, 'out', name, 'train.sts-pair.arrow')
}

const pairs = (n: number) => Array.from({length: n}, (_, i) => `first ${i}\tsecond ${i}\t${i % 6}`)

describe('loadTrainingDataset', () => {
  it('loads a prepared file with its file rows and content digest; limit keeps the rows it picks numbered as in the file', async () => {
    await withDir(async (dir) => {
      const file = await prepared(dir, 'stsb', pairs(10))
      const all = await loadTrainingDataset({path: file}, 0)
      assert.equal(all.task, 'sts')
      assert.equal(all.rows.length, 10)
      assert.deepEqual(Array.from(all.fileRows!), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      assert.match(all.digest!, /^[0-9a-f]{32}$/)
      assert.deepEqual(all.warnings, [])
      const some = await loadTrainingDataset({path: file, limit: 3, pick: 'random'}, 0, 7)
      assert.equal(some.rows.length, 3)
      assert.deepEqual((await readRows(some.rows as RowSource<StsPairRecord>, [0, 1, 2])).map((r) => r.text1), Array.from(some.fileRows!, (i) => `first ${i}`))
      await closeTrainingData([all, some])
    })
  })

  it('refuses an sts-pair file with NaN, infinite or out-of-range scores, listing the first five problems and the count', async () => {
    await withDir(async (dir) => {
      const file = join(dir, 'bad.arrow')
      const w = new ArrowRecordWriter(file, 'sts-pair', {batchRows: 3, metadata: {'codiemb.dataset': 'bad', 'codiemb.label_range': '{"min":0,"max":5}'}})
      const scores = [0.2, NaN, Infinity, 7, 0.4, -1, 0.6, 2, 0.8, 0.5]
      // Row 9's score is in [0, 1] but its raw label 9 lies outside the label range.
      scores.forEach((score, i) => w.write({id: `s${i}`, text1: 'a', text2: 'b', score, raw_score: i === 9 ? 9 : Number.isFinite(score) && score >= 0 && score <= 1 ? score * 5 : 1, instruction: ''}))
      await w.finish()
      await assert.rejects(loadTrainingDataset({path: file}, 0), {
        name: 'TrainingDataError',
        message:
          `${file}: 6 problems against the sts-pair layout (data-schemas/records/sts-pair.schema.json) and the label range [0, 5] of ${file} (codiemb.label_range):\n` +
          '  row 1 (id "s1"): score: expected a finite number in [0, 1], got NaN\n' +
          '  row 2 (id "s2"): score: expected a finite number in [0, 1], got Infinity\n' +
          '  row 3 (id "s3"): score: expected a finite number in [0, 1], got 7\n' +
          '  row 5 (id "s5"): score: expected a finite number in [0, 1], got -1\n' +
          '  row 7 (id "s7"): score: expected a finite number in [0, 1], got 2\n' +
          '  … and 1 more\n' +
          'Rows are numbered from 0 in file order. Fix the source and re-run `codiemb prepare`.',
      })
    })
  })

  it('refuses string scores and a missing text2 column, naming the columns', async () => {
    await withDir(async (dir) => {
      const file = join(dir, 'strings.arrow')
      const utf8 = (values: string[]) => ({type: new Utf8(), values})
      writeArrowColumns(file, {id: utf8(['1']), text1: utf8(['a']), score: utf8(['0.5']), raw_score: {type: new Float32(), values: [2.5]}, instruction: utf8([''])}, {'codiemb.kind': 'sts-pair'})
      await assert.rejects(loadTrainingDataset({path: file}, 0), {
        name: 'TrainingDataError',
        message: `${file}: the columns do not match the sts-pair layout (data-schemas/records/sts-pair.schema.json):\n  text2: expected a Utf8 column, but the file has none\n  score: expected a Float32 column, got Utf8`,
      })
    })
  })

  it('refuses IR examples without a positive (the layout requires one) and drops, counting, those with too few negatives', async () => {
    await withDir(async (dir) => {
      const file = join(dir, 'ir.arrow')
      const w = new ArrowRecordWriter(file, 'ir-example')
      w.write({id: 'a', query: 'q', instruction: '', positives: ['p'], negatives: ['n'], positive_scores: null, negative_scores: null})
      w.write({id: 'b', query: 'q', instruction: '', positives: ['p'], negatives: ['n', 'm'], positive_scores: null, negative_scores: null})
      await w.finish()
      const loaded = await loadTrainingDataset({path: file}, 2)
      assert.equal(loaded.dropped, 1)
      assert.deepEqual(Array.from(loaded.fileRows!), [1])
      const bad = join(dir, 'nopos.arrow')
      const v = new ArrowRecordWriter(bad, 'ir-example')
      v.write({id: 'c', query: 'q', instruction: '', positives: [], negatives: ['n', 'm'], positive_scores: null, negative_scores: null})
      await v.finish()
      await assert.rejects(loadTrainingDataset({path: bad}, 2), /nopos\.arrow: 1 problem against the ir-example layout .*\n {2}row 0 \(id "c"\): positives: expected at least 1 item, got 0/)
    })
  })

  it('checks a prepared file against its manifest entry: a swapped file and a disagreeing label range are refused', async () => {
    await withDir(async (dir) => {
      const file = await prepared(dir, 'stsb', pairs(6))
      const other = await prepared(dir, 'other', pairs(7))
      const kept = readFileSync(file)
      copyFileSync(other, file)
      await assert.rejects(loadTrainingDataset({path: file}, 0), (e: Error) => e.name === 'TrainingDataError' && e.message.startsWith(`${file}: is not the file ${join(dir, 'out', 'manifest.json')} lists (sts-pair, 6 rows,`))
      writeFileSync(file, kept)
      const manifestFile = join(dir, 'out', 'manifest.json')
      const manifest = readManifest(join(dir, 'out'))!
      manifest.datasets.stsb!.labelRange = {min: 0, max: 10}
      writeFileSync(manifestFile, JSON.stringify(manifest))
      await assert.rejects(loadTrainingDataset({path: file}, 0), {
        name: 'TrainingDataError',
        message: `${file}: its label range [0, 5] (codiemb.label_range) differs from [0, 10], which ${manifestFile} declares for dataset stsb; re-run \`codiemb prepare\``,
      })
    })
  })

  it('a file without checksums: checked against the sha256 manifest.json recorded; without a manifest entry, loaded with a warning', async () => {
    await withDir(async (dir) => {
      const file = await prepared(dir, 'stsb', pairs(5))
      const rows = await readAllRecords(file, 'sts-pair')
      // Replace it with what an earlier codiemb wrote: same rows, no checksums; update the manifest as that version did.
      writeWithoutChecksums(file, 'sts-pair', rows, {'codiemb.dataset': 'stsb', 'codiemb.label_range': '{"min":0,"max":5}'})
      const bytes = readFileSync(file)
      const manifest = readManifest(join(dir, 'out'))!
      Object.assign(manifest.files[0]!, {bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex')})
      writeFileSync(join(dir, 'out', 'manifest.json'), JSON.stringify(manifest))
      const verified = await loadTrainingDataset({path: file}, 0)
      assert.equal(verified.rows.length, 5)
      assert.equal(verified.digest, `sha256:${manifest.files[0]!.sha256}`)
      assert.deepEqual(verified.warnings, [])
      const flipped = Buffer.from(bytes)
      flipped[bytes.indexOf('second 3')]! ^= 0x20
      writeFileSync(file, flipped)
      await assert.rejects(loadTrainingDataset({path: file}, 0), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: its sha256 [0-9a-f]{64} differs from the ${manifest.files[0]!.sha256} that .*manifest\\.json recorded`))
      const loose = join(dir, 'loose.arrow')
      writeWithoutChecksums(loose, 'sts-pair', rows, {})
      const unverified = await loadTrainingDataset({path: loose}, 0)
      assert.equal(unverified.rows.length, 5)
      assert.deepEqual(unverified.warnings, [
        `${loose}: carries no checksums (prepared by an earlier codiemb or another tool) and no manifest.json lists it: damage to it cannot be detected; re-run \`codiemb prepare\` to add them`,
      ])
    })
  })

  it('a missing file, an empty file and a file of another kind are errors naming the file', async () => {
    await withDir(async (dir) => {
      await assert.rejects(loadTrainingDataset({path: join(dir, 'missing.arrow')}, 0), /missing\.arrow: training file not found \(run `codiemb prepare` first\)/)
      const empty = join(dir, 'empty.arrow')
      writeFileSync(empty, '')
      await assert.rejects(loadTrainingDataset({path: empty}, 0), {name: 'RecordFileError', message: /empty\.arrow: the file is empty \(0 bytes\)/})
      mkdirSync(join(dir, 'c'))
      const corpus = join(dir, 'c', 'corpus.arrow')
      const w = new ArrowRecordWriter(corpus, 'corpus')
      w.write({id: 'd', title: '', text: 't'})
      await w.finish()
      await assert.rejects(loadTrainingDataset({path: corpus}, 0), /corpus\.arrow: expected an "ir-example" or "sts-pair" record file, got "corpus"/)
    })
  })
})

describe('batchTexts', () => {
  it('refuses a row whose text is only white space as its batch is assembled, naming the file row, field and dataset', async () => {
    await withDir(async (dir) => {
      const file = join(dir, 'ws.arrow')
      const w = new ArrowRecordWriter(file, 'sts-pair', {metadata: {'codiemb.dataset': 'ws'}})
      const rows: StsPairRecord[] = Array.from({length: 4}, (_, i) => ({id: `s${i}`, text1: 'a', text2: i === 3 ? '   ' : 'b', score: 0.5, raw_score: 0.5, instruction: ''}))
      await w.writeAll(rows)
      await w.finish()
      const dataset = await loadTrainingDataset({path: file}, 0)
      const shape = {positives: 1, negatives: 0}
      assert.equal((await batchTexts([dataset], {dataset: 0, rows: [0, 1, 2]}, shape, PAPER_INSTRUCTIONS, new Rng(1))).task, 'sts')
      await assert.rejects(batchTexts([dataset], {dataset: 0, rows: [2, 3]}, shape, PAPER_INSTRUCTIONS, new Rng(1)), {
        name: 'TrainingDataError',
        message: `${file}: row 3 (id "s3"): text2: expected a text with a non-space character, got "   " (dataset ws; rows are numbered from 0). Fix the source and re-run \`codiemb prepare\``,
      })
    })
  })
})
