/**
 * Prepares every dataset in ../shared/data with the shipped recipes, then checks each output against
 * the folder's SOURCES.md (row counts, sha256 of the sources) and reads every file back.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync, readdirSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {parse} from 'yaml'
import {readAllRecords, readArrowMeta, type RecordKind} from '../../src/io/arrow-records.js'
import {prepare, readManifest, type DatasetConfig, type PrepareResult} from '../../src/data/prepare.js'
import {REPO_ROOT, shared, BUILTINS} from '../helpers/env.js'

const RECIPES = join(REPO_ROOT, 'recipes', 'prepare')

function recipe(file: string): DatasetConfig[] {
  return (parse(readFileSync(join(RECIPES, file), 'utf8')) as {prepare: {datasets: DatasetConfig[]}}).prepare.datasets
}

interface SourceTable {
  lines: Map<string, number>
  sha256: Map<string, string>
  text: string
}

function sourcesMd(dataRoot: string, folder: string): SourceTable {
  const text = readFileSync(join(dataRoot, folder, 'SOURCES.md'), 'utf8')
  const lines = new Map<string, number>()
  const sha256 = new Map<string, string>()
  for (const m of text.matchAll(/^\| (\S+) \| (\d+) \| (\d+) \| `([0-9a-f]{64})` \|$/gm)) {
    lines.set(`${folder}/${m[1]}`, Number(m[3]))
    sha256.set(`${folder}/${m[1]}`, m[4])
  }
  assert.ok(lines.size > 0, `no file table in ${folder}/SOURCES.md`)
  return {lines, sha256, text}
}

const num = (s: string) => Number(s.replace(/,/g, ''))

test('all.yaml is exactly the union of the per-dataset recipes', () => {
  const parts = readdirSync(RECIPES)
    .filter((f) => f.endsWith('.yaml') && f !== 'all.yaml')
    .flatMap((f) => recipe(f))
  const all = recipe('all.yaml')
  const byName = (a: DatasetConfig, b: DatasetConfig) => a.name.localeCompare(b.name)
  assert.deepEqual([...all].sort(byName), [...parts].sort(byName))
})

test('every dataset in ../shared/data prepares with the recipes; counts match SOURCES.md; every output reads back', async (t) => {
  const dataRoot = shared(t, 'data')
  if (!dataRoot) return
  const datasets = recipe('all.yaml')
  // Every data folder (except the tokenizer-only vocab) is covered by some recipe.
  const folders = readdirSync(dataRoot).filter((f) => f !== 'bert-vocab-zh')
  const covered = new Set(datasets.flatMap((d) => [d.path, ...(Array.isArray(d.splits) ? [] : Object.values(d.splits))].filter(Boolean).map((p) => String(p).split('/')[0])))
  assert.deepEqual(folders.filter((f) => !covered.has(f)), [], 'data folders without a recipe')

  const out = mkdtempSync(join(tmpdir(), 'codiemb-prepare-all-'))
  try {
    const result: PrepareResult = await prepare({datasets}, {registry: BUILTINS, dataRoot, out})
    assert.equal(result.rejected, 0)
    const manifest = readManifest(out)!
    assert.equal(manifest.files.length, result.datasets.reduce((s, d) => s + d.files.length, 0))
    const tables = new Map<string, SourceTable>()
    const table = (folder: string) => {
      if (!tables.has(folder)) tables.set(folder, sourcesMd(dataRoot, folder))
      return tables.get(folder)!
    }

    for (const ds of datasets) {
      const res = result.datasets.find((d) => d.name === ds.name)!
      // Source hashes recorded in the outputs equal those SOURCES.md lists.
      for (const src of res.sources) {
        const folder = src.path.split('/')[0]
        assert.equal(src.sha256, table(folder).sha256.get(src.path), `${ds.name}: sha256 of ${src.path}`)
      }
      for (const f of res.files) {
        let expected: number
        if (ds.reader === 'beir') {
          const folder = ds.path!
          const tb = table(folder)
          if (f.kind === 'corpus') expected = tb.lines.get(`${folder}/corpus.jsonl`)!
          else if (f.kind === 'queries') expected = tb.lines.get(`${folder}/queries.jsonl`)!
          else if (f.kind === 'qrels') expected = tb.lines.get(`${folder}/qrels/${f.split}.tsv`)! - 1 // header line
          else {
            // IR examples from qrels: one per judged query, "train qrels 919 (809 queries)".
            const m = new RegExp(`${f.split} qrels [\\d,]+ \\((\\d+) queries\\)`).exec(tb.text)
            assert.ok(m, `SOURCES.md of ${folder} states the ${f.split} query count`)
            expected = num(m[1])
          }
        } else if (ds.reader === 'nli' && ds.task === 'ir') {
          // "6,503 derived triplets (dev 3,256, test 3,247)"
          const m = /derived triplets \(dev ([\d,]+), test ([\d,]+)\)/.exec(table('snli-senteval').text)!
          expected = num(f.split === 'dev' ? m[1] : m[2])
        } else if (ds.reader === 'nli') {
          expected = table(ds.path!).lines.get(`${ds.path}/s1.${f.split}`)!
        } else {
          const file = (ds.splits as Record<string, string>)[f.split!]
          expected = table(file.split('/')[0]).lines.get(file)!
        }
        assert.equal(f.rows, expected, `${f.path}: rows`)

        // Read it back: kind, metadata and every row.
        const meta = await readArrowMeta(join(out, f.path))
        assert.equal(meta.kind, f.kind)
        assert.equal(meta.dataset, ds.name)
        assert.equal(meta.task, ds.task)
        assert.equal(meta.instruction, ds.instruction ?? '')
        assert.equal(meta.rows, expected)
        assert.deepEqual(JSON.parse(meta.metadata['codiemb.sources']), res.sources)
        const rows = await readAllRecords(join(out, f.path), f.kind as RecordKind)
        assert.equal(rows.length, expected)
        if (f.kind === 'sts-pair') {
          const range = JSON.parse(meta.metadata['codiemb.label_range']) as {min: number; max: number}
          for (const r of rows as {score: number; raw_score: number; text1: string; text2: string}[]) {
            assert.ok(r.score >= 0 && r.score <= 1 && r.text1 && r.text2)
            assert.ok(Math.abs(r.score - (r.raw_score - range.min) / (range.max - range.min)) < 1e-6)
          }
        }
        if (f.kind === 'ir-example') for (const r of rows as {positives: string[]}[]) assert.ok(r.positives.length >= 1)
      }
    }

    // Spot checks of content and statistics against facts stated in SOURCES.md.
    const stsbTrain = await readAllRecords(join(out, 'stsbenchmark/train.sts-pair.arrow'), 'sts-pair')
    assert.deepEqual(stsbTrain[0], {id: '1', text1: 'A plane is taking off.', text2: 'An air plane is taking off.', score: 1, raw_score: 5, instruction: 'Retrieve semantically similar text.'})
    const afqmc = result.datasets.find((d) => d.name === 'afqmc')!
    assert.deepEqual(afqmc.stats['afqmc/validation.sts-pair.arrow'].labels, {0: 2978, 1: 1338}) // "label 0: 2,978, 1: 1,338"
    const snliSts = result.datasets.find((d) => d.name === 'snli-sts')!
    assert.deepEqual(snliSts.stats['snli-sts/dev.sts-pair.arrow'].labels, {0: 3278, 0.5: 3235, 1: 3329}) // "E 3,329 / C 3,278 / N 3,235"
    const hardneg = result.datasets.find((d) => d.name === 'stsb-zh-hardneg')!.stats['stsb-zh-hardneg/train.ir-example.arrow']
    assert.equal(hardneg.perQuery!.positives.max, 1) // "each 1 pos + 10 neg"
    assert.equal(hardneg.perQuery!.negatives.min, 10)
    assert.equal(hardneg.perQuery!.negatives.max, 10)
    const scifactTest = result.datasets.find((d) => d.name === 'scifact')!.stats['scifact/test.qrels.arrow']
    assert.equal(scifactTest.perQuery!.judged.count, 300) // "test 339 (300 q)"

    // The SentEval pairs grouped into SimCSE triplets equal the derived triplets file, row for row.
    for (const split of ['dev', 'test']) {
      const key = (r: {query: string; positives: string[]; negatives: string[]}) => JSON.stringify([r.query, r.positives, r.negatives])
      const a = (await readAllRecords(join(out, `snli-ir/${split}.ir-example.arrow`), 'ir-example')).map(key).sort()
      const b = (await readAllRecords(join(out, `snli-triplets/${split}.ir-example.arrow`), 'ir-example')).map(key).sort()
      assert.deepEqual(a, b, `snli ${split}`)
    }
  } finally {
    rmSync(out, {recursive: true, force: true})
  }
})
