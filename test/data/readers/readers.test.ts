/**
 * Every reader on good and bad input, through the prepare engine: bad rows fail with the exact
 * `file:line: reason`, and --skip-invalid accounts for every input row.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {Field, Float64, Int64, RecordBatchStreamWriter, Schema, Table, Utf8, List, vectorFromArray} from 'apache-arrow'
import {readAllRecords} from '../../../src/io/arrow-records.js'
import {prepare, type DatasetConfig, type PrepareResult} from '../../../src/data/prepare.js'
import {BUILTINS} from '../../helpers/env.js'

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'codiemb-readers-'))
}

/** Writes files under a fresh data root; returns it. */
function dataRoot(files: Record<string, string | Uint8Array>): string {
  const root = tmp()
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(root, name, '..'), {recursive: true})
    writeFileSync(join(root, name), content)
  }
  return root
}

async function run(root: string, ds: Partial<DatasetConfig>, skipInvalid = false): Promise<PrepareResult> {
  const dataset = {name: 'd', ...ds} as DatasetConfig
  // Each case prepares several variants into one output folder: replacing its own earlier dataset is allowed.
  return prepare({datasets: [dataset]}, {registry: BUILTINS, dataRoot: root, out: join(root, 'out'), skipInvalid, overwrite: true})
}

async function fails(root: string, ds: Partial<DatasetConfig>, message: string): Promise<void> {
  await assert.rejects(run(root, ds), (e: Error) => {
    assert.ok(e.message.startsWith(message), `expected an error starting with\n  ${message}\ngot\n  ${e.message}`)
    assert.equal((e as {exitCode?: number}).exitCode, 2)
    return true
  })
}

const sts01 = {task: 'sts' as const, labelRange: {values: [0, 1]}}

test('delimited: STS-B layout (fields 5/6/7, extra tab fields, stray quotes) reads with the plain split', async () => {
  const root = dataRoot({
    'sts.csv':
      'main-captions\tMSRvid\t2012test\t0001\t5.000\tA plane is taking off.\tAn air plane is taking off.\n' +
      'main-news\theadlines\t2015\t0002\t2.5\t"Quoted start\tunbalanced" end\textra\tfields\n',
  })
  try {
    const r = await run(root, {reader: 'delimited', task: 'sts', labelRange: {min: 0, max: 5}, splits: {train: 'sts.csv'}, fields: {score: 5, text1: 6, text2: 7}})
    const rows = await readAllRecords(join(root, 'out', 'd', 'train.sts-pair.arrow'), 'sts-pair')
    assert.equal(r.rows, 2)
    assert.deepEqual(rows.map((x) => [x.text1, x.text2, x.raw_score, x.score]), [
      ['A plane is taking off.', 'An air plane is taking off.', 5, 1],
      ['"Quoted start', 'unbalanced" end', 2.5, 0.5],
    ])
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('delimited: wrong column count, NaN score, out-of-range label, empty text, missing header column — exact file:line', async () => {
  const root = dataRoot({
    'a.tsv': 's1\ts2\t1\nonly two\tfields\n',
    'b.tsv': 's1\ts2\t0\ns1\ts2\t1\ns1\ts2\tNaN\n',
    'c.tsv': 's1\ts2\t2\n',
    'd.tsv': 's1\t \t1\n',
    'e.tsv': 'sentence1\tlabel\nx\t1\n',
  })
  try {
    const base = {reader: 'delimited', ...sts01, options: {columns: 3}}
    const f = (n: string) => join(root, n)
    await fails(root, {...base, splits: {test: 'a.tsv'}}, `${f('a.tsv')}:2: wrong column count: expected 3 fields, got 2`)
    await fails(root, {...base, splits: {test: 'b.tsv'}}, `${f('b.tsv')}:3: score: expected a number, got "NaN"`)
    await fails(root, {...base, splits: {test: 'c.tsv'}}, `${f('c.tsv')}:1: score: label 2 is outside the declared label range {0, 1}`)
    await fails(root, {...base, splits: {test: 'd.tsv'}}, `${f('d.tsv')}:1: text2: empty text`)
    await fails(
      root,
      {reader: 'delimited', ...sts01, splits: {test: 'e.tsv'}, options: {header: true}, fields: {text1: 'sentence1', text2: 'sentence2', score: 'label'}},
      `${f('e.tsv')}:1: header has no column "sentence2" (wanted for text2)`,
    )
    // Without `columns`, a row only needs the columns the mapping uses.
    await fails(root, {reader: 'delimited', ...sts01, splits: {test: 'a.tsv'}}, `${f('a.tsv')}:2: wrong column count: expected at least 3 fields, got 2`)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('delimited csv quoting: quoted delimiters, doubled quotes and line breaks; rows keep their starting line', async () => {
  const root = dataRoot({
    'ok.csv': 'text_a,text_b,score\n"a, with comma","b ""quoted""",1\n"multi\nline",plain,0\r\nlast,row,1',
    'bad.csv': 'a,b,1\n"never closed,b,1\nmore\n',
    'junk.csv': 'a,b,1\n"x"y,b,0\n',
  })
  try {
    const opts = {reader: 'delimited', ...sts01, options: {quoting: 'csv', delimiter: ',', header: true}, fields: {text1: 'text_a', text2: 'text_b', score: 'score'}}
    await run(root, {...opts, splits: {train: 'ok.csv'}})
    const rows = await readAllRecords(join(root, 'out', 'd', 'train.sts-pair.arrow'), 'sts-pair')
    assert.deepEqual(rows.map((r) => [r.id, r.text1, r.text2, r.raw_score]), [
      ['2', 'a, with comma', 'b "quoted"', 1],
      ['3', 'multi\nline', 'plain', 0],
      ['5', 'last', 'row', 1],
    ])
    const noHeader = {reader: 'delimited', ...sts01, options: {quoting: 'csv', delimiter: ','}}
    await fails(root, {...noHeader, splits: {train: 'bad.csv'}}, `${join(root, 'bad.csv')}:2: unterminated quoted field`)
    await fails(root, {...noHeader, splits: {train: 'junk.csv'}}, `${join(root, 'junk.csv')}:2: malformed CSV: column 1: unexpected "y" after a closing quote`)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('json: JSON lines and arrays, numeric strings as labels, malformed line, missing field, non-numeric label', async () => {
  const root = dataRoot({
    'ok.jsonl': '{"sentence1":"a","sentence2":"b","label":"1","idx":7}\n\n{"sentence1":"c","sentence2":"d","label":0}\n',
    'arr.json': '[\n  {"q": {"text": "a"}, "t": "b", "l": "2"},\n  {"q": {"text": "c"},\n   "t": "d", "l": 0}\n]\n',
    'broken.jsonl': '{"sentence1":"a","sentence2":"b","label":"1"}\n{"sentence1": "a", "sentence2": \n',
    'missing.jsonl': '{"sentence1":"a","label":"1"}\n',
    'word.jsonl': '{"sentence1":"a","sentence2":"b","label":"yes"}\n',
    'badarr.json': '[{"q": {"text": "a"}, "t": "b", "l": 1},\n {"q": oops}\n]',
  })
  try {
    const afqmc = {reader: 'json', ...sts01, fields: {id: 'idx', text1: 'sentence1', text2: 'sentence2', score: 'label'}}
    await run(root, {...afqmc, splits: {v: 'ok.jsonl'}})
    const rows = await readAllRecords(join(root, 'out', 'd', 'v.sts-pair.arrow'), 'sts-pair')
    assert.deepEqual(rows.map((r) => [r.id, r.text1, r.raw_score]), [['7', 'a', 1], ['3', 'c', 0]])

    const arr = {reader: 'json', task: 'sts' as const, labelRange: {values: [0, 1, 2]}, fields: {text1: 'q.text', text2: 't', score: 'l'}}
    await run(root, {...arr, splits: {v: 'arr.json'}})
    assert.deepEqual((await readAllRecords(join(root, 'out', 'd', 'v.sts-pair.arrow'), 'sts-pair')).map((r) => [r.id, r.text1, r.raw_score, r.score]), [
      ['1', 'a', 2, 1],
      ['2', 'c', 0, 0],
    ])
    await fails(root, {...afqmc, splits: {v: 'broken.jsonl'}}, `${join(root, 'broken.jsonl')}:2: malformed JSON:`)
    await fails(root, {...afqmc, splits: {v: 'missing.jsonl'}}, `${join(root, 'missing.jsonl')}:1: missing field "sentence2" (mapped to text2)`)
    await fails(root, {...afqmc, splits: {v: 'word.jsonl'}}, `${join(root, 'word.jsonl')}:1: score: expected a number, got "yes"`)
    await fails(root, {...arr, splits: {v: 'badarr.json'}}, `${join(root, 'badarr.json')}:2: malformed JSON:`)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('flagembedding-jsonl: examples with scores and prompt; empty pos, score count mismatch, malformed line', async () => {
  const root = dataRoot({
    'ok.jsonl': '{"query":"q1","pos":["p"],"neg":["n1","n2"],"pos_scores":[0.9],"neg_scores":["0.1",0.2],"prompt":"Find it"}\n{"query":"q2","pos":["p2"],"neg":[]}\n',
    'nopos.jsonl': '{"query":"q1","pos":["p"],"neg":[]}\n{"query":"q2","pos":[],"neg":["n"]}\n',
    'scores.jsonl': '{"query":"q1","pos":["p","p2"],"neg":[],"pos_scores":[1]}\n',
    'bad.jsonl': '{"query":"q1","pos":["p"],"neg":[]}\n{"query":"q1",,}\n',
  })
  try {
    const fe = {reader: 'flagembedding-jsonl', task: 'ir' as const, instruction: 'Default'}
    await run(root, {...fe, splits: {train: 'ok.jsonl'}})
    assert.deepEqual(await readAllRecords(join(root, 'out', 'd', 'train.ir-example.arrow'), 'ir-example'), [
      {id: '1', query: 'q1', instruction: 'Find it', positives: ['p'], negatives: ['n1', 'n2'], positive_scores: [Math.fround(0.9)], negative_scores: [Math.fround(0.1), Math.fround(0.2)]},
      {id: '2', query: 'q2', instruction: 'Default', positives: ['p2'], negatives: [], positive_scores: null, negative_scores: null},
    ])
    await fails(root, {...fe, splits: {train: 'nopos.jsonl'}}, `${join(root, 'nopos.jsonl')}:2: positives: IR example without a positive`)
    await fails(root, {...fe, splits: {train: 'scores.jsonl'}}, `${join(root, 'scores.jsonl')}:1: positive_scores: expected 2 scores (one per entry of positives), got 1`)
    await fails(root, {...fe, splits: {train: 'bad.jsonl'}}, `${join(root, 'bad.jsonl')}:2: malformed JSON:`)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('codiemb-jsonl: IR and STS examples with [task, instance, text] triples; bad triple, NaN score, task mismatch', async () => {
  const T = 'Retrieve passages'
  const root = dataRoot({
    'ir.jsonl':
      JSON.stringify({task_type: 'ir', query: [T, '', 'what is x'], positives: [[T, '', 'x is y']], negatives: [[T, '', 'z'], 'plain negative'], positive_scores: [1], negative_scores: [0.2, 0.1]}) + '\n',
    'sts.jsonl':
      JSON.stringify({task_type: 'sts', query: ['Similar', 'zh', 'a'], positives: [['Similar', '', 'b']], negatives: [['Similar', '', 'c']], positive_scores: [4], negative_scores: [1]}) + '\n',
    'badtriple.jsonl': JSON.stringify({task_type: 'ir', query: [T, 'what'], positives: ['p']}) + '\n',
    'nan.jsonl': '{"task_type":"sts","query":"a","positives":["b"],"positive_scores":[NaN]}\n',
    'nanstr.jsonl': JSON.stringify({task_type: 'sts', query: 'a', positives: ['b'], positive_scores: ['NaN']}) + '\n',
    'mixed.jsonl': JSON.stringify({task_type: 'sts', query: 'a', positives: ['b'], positive_scores: [1]}) + '\n',
  })
  try {
    await run(root, {reader: 'codiemb-jsonl', task: 'ir', splits: {train: 'ir.jsonl'}})
    assert.deepEqual(await readAllRecords(join(root, 'out', 'd', 'train.ir-example.arrow'), 'ir-example'), [
      {id: '1', query: 'what is x', instruction: T, positives: ['x is y'], negatives: ['z', 'plain negative'], positive_scores: [1], negative_scores: [Math.fround(0.2), Math.fround(0.1)]},
    ])
    await run(root, {reader: 'codiemb-jsonl', task: 'sts', labelRange: {min: 0, max: 5}, splits: {train: 'sts.jsonl'}})
    assert.deepEqual(
      (await readAllRecords(join(root, 'out', 'd', 'train.sts-pair.arrow'), 'sts-pair')).map((r) => [r.id, r.text1, r.text2, r.raw_score, r.instruction]),
      [
        ['1.1', 'zh a', 'b', 4, 'Similar'],
        ['1.2', 'zh a', 'c', 1, 'Similar'],
      ],
    )
    await fails(root, {reader: 'codiemb-jsonl', task: 'ir', splits: {train: 'badtriple.jsonl'}}, `${join(root, 'badtriple.jsonl')}:1: query: expected [task instruction, instance instruction, text] (three strings), got ["Retrieve passages","what"]`)
    await fails(root, {reader: 'codiemb-jsonl', task: 'sts', labelRange: {min: 0, max: 5}, splits: {train: 'nan.jsonl'}}, `${join(root, 'nan.jsonl')}:1: malformed JSON:`)
    await fails(root, {reader: 'codiemb-jsonl', task: 'sts', labelRange: {min: 0, max: 5}, splits: {train: 'nanstr.jsonl'}}, `${join(root, 'nanstr.jsonl')}:1: score: expected a number, got "NaN"`)
    await fails(root, {reader: 'codiemb-jsonl', task: 'ir', splits: {train: 'mixed.jsonl'}}, `${join(root, 'mixed.jsonl')}:1: task_type "sts" does not match the dataset's task "ir"`)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('beir: dangling qrels, duplicate corpus ids, unknown query, malformed corpus line — exact file:line; IR examples from qrels', async () => {
  const corpus = '{"_id":"1","title":"T1","text":"one"}\n{"_id":"2","title":"","text":"two"}\n'
  const queries = '{"_id":"q1","text":"first"}\n{"_id":"q2","text":"second"}\n'
  const root = dataRoot({
    'ok/corpus.jsonl': corpus,
    'ok/queries.jsonl': queries,
    'ok/qrels/test.tsv': 'query-id\tcorpus-id\tscore\nq1\t1\t1\nq2\t2\t2\nq2\t1\t0\n',
    'dangling/corpus.jsonl': corpus,
    'dangling/queries.jsonl': queries,
    'dangling/qrels/test.tsv': 'query-id\tcorpus-id\tscore\nq1\t1\t1\nq2\t999\t1\n',
    'dupe/corpus.jsonl': corpus + '{"_id":"1","title":"","text":"again"}\n',
    'dupe/queries.jsonl': queries,
    'dupe/qrels/test.tsv': 'query-id\tcorpus-id\tscore\n',
    'noquery/corpus.jsonl': corpus,
    'noquery/queries.jsonl': queries,
    'noquery/qrels/test.tsv': 'query-id\tcorpus-id\tscore\nq9\t1\t1\n',
    'broken/corpus.jsonl': '{"_id":"1","title":"T1","text":"one"}\n{"_id": 2, "text": }\n',
    'broken/queries.jsonl': queries,
    'broken/qrels/test.tsv': 'query-id\tcorpus-id\tscore\n',
  })
  try {
    const r = await run(root, {reader: 'beir', task: 'eval', path: 'ok', splits: ['test'], instruction: 'Find'})
    assert.deepEqual(r.datasets[0].files.map((f) => [f.path, f.rows]), [
      ['d/corpus.arrow', 2],
      ['d/queries.arrow', 2],
      ['d/test.qrels.arrow', 3],
    ])
    assert.deepEqual(await readAllRecords(join(root, 'out', 'd', 'queries.arrow'), 'queries'), [
      {id: 'q1', text: 'first', instruction: 'Find'},
      {id: 'q2', text: 'second', instruction: 'Find'},
    ])
    assert.deepEqual(await readAllRecords(join(root, 'out', 'd', 'test.qrels.arrow'), 'qrels'), [
      {query_id: 'q1', corpus_id: '1', score: 1},
      {query_id: 'q2', corpus_id: '2', score: 2},
      {query_id: 'q2', corpus_id: '1', score: 0},
    ])
    const ir = await run(root, {reader: 'beir', task: 'ir', path: 'ok', splits: ['test']})
    assert.deepEqual(ir.datasets[0].unusedReasons, {'qrels score below minScore 1': 1})
    assert.deepEqual(
      (await readAllRecords(join(root, 'out', 'd', 'test.ir-example.arrow'), 'ir-example')).map((e) => [e.id, e.query, e.positives]),
      [
        ['q1', 'first', ['T1 one']],
        ['q2', 'second', ['two']],
      ],
    )
    await fails(root, {reader: 'beir', task: 'eval', path: 'dangling', splits: ['test']}, `${join(root, 'dangling/qrels/test.tsv')}:3: corpus_id: "999" is not a known document (dangling qrels)`)
    await fails(root, {reader: 'beir', task: 'ir', path: 'dangling', splits: ['test']}, `${join(root, 'dangling/qrels/test.tsv')}:3: qrels: corpus id "999" is not in`)
    await fails(root, {reader: 'beir', task: 'eval', path: 'dupe', splits: ['test']}, `${join(root, 'dupe/corpus.jsonl')}:3: id: duplicate corpus id "1"`)
    await fails(root, {reader: 'beir', task: 'eval', path: 'noquery', splits: ['test']}, `${join(root, 'noquery/qrels/test.tsv')}:2: query_id: "q9" is not a known query (dangling qrels)`)
    await fails(root, {reader: 'beir', task: 'eval', path: 'broken', splits: ['test']}, `${join(root, 'broken/corpus.jsonl')}:2: malformed JSON:`)
    await fails(root, {reader: 'beir', task: 'eval', path: 'missing', splits: ['test']}, `dataset d: BEIR directory not found: ${join(root, 'missing')}`)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('nli: SentEval files to STS pairs and IR triplets/groups; bad label and files of different length', async () => {
  const s1 = 'A man sleeps .\nA man sleeps .\nA man sleeps .\nA man sleeps .\nKids play .\nKids play .\n'
  const s2 = 'He rests .\nHe runs .\nHe dreams .\nHe is asleep .\nChildren play .\nNobody plays .\n'
  const labels = 'entailment\ncontradiction\nneutral\nentailment\nentailment\nneutral\n'
  const root = dataRoot({
    'snli/s1.dev': s1,
    'snli/s2.dev': s2,
    'snli/labels.dev': labels,
    'bad/s1.dev': 'a\nb\n',
    'bad/s2.dev': 'c\nd\n',
    'bad/labels.dev': 'entailment\nmaybe\n',
    'short/s1.dev': 'a\nb\n',
    'short/s2.dev': 'c\n',
    'short/labels.dev': 'entailment\nneutral\n',
    'trip.jsonl': '{"split":"dev","anchor":"a","positive":"p","negative":"n"}\n{"split":"train","anchor":"b","positive":"q","negative":"m"}\n{"split":"dev","anchor":"c"}\n',
  })
  try {
    const sts = await run(root, {reader: 'nli', task: 'sts', labelRange: {values: [0, 0.5, 1]}, path: 'snli', splits: ['dev']})
    assert.equal(sts.rows, 6)
    assert.deepEqual((await readAllRecords(join(root, 'out', 'd', 'dev.sts-pair.arrow'), 'sts-pair')).map((r) => r.score), [1, 0, 0.5, 1, 1, 0.5])

    const ir = await run(root, {reader: 'nli', task: 'ir', path: 'snli', splits: ['dev']})
    // Premise 1: entailments {rests, is asleep} x contradiction {runs} = 2 triplets; premise 2 has no contradiction.
    assert.deepEqual(
      (await readAllRecords(join(root, 'out', 'd', 'dev.ir-example.arrow'), 'ir-example')).map((e) => [e.query, e.positives, e.negatives]),
      [
        ['A man sleeps .', ['He rests .'], ['He runs .']],
        ['A man sleeps .', ['He is asleep .'], ['He runs .']],
      ],
    )
    // 6 pairs: 3 (rests, runs, is asleep) feed the 2 triplets, the other 3 are counted as unused.
    assert.equal(ir.datasets[0].unused, 3)
    assert.deepEqual(ir.datasets[0].unusedReasons, {'neutral pair (IR uses entailment and contradiction)': 2, 'premise has no contradiction hypothesis': 1})

    await run(root, {reader: 'nli', task: 'ir', path: 'snli', splits: ['dev'], options: {irShape: 'grouped'}})
    assert.deepEqual(
      (await readAllRecords(join(root, 'out', 'd', 'dev.ir-example.arrow'), 'ir-example')).map((e) => [e.query, e.positives, e.negatives]),
      [
        ['A man sleeps .', ['He rests .', 'He is asleep .'], ['He runs .']],
        ['Kids play .', ['Children play .'], []],
      ],
    )
    await fails(root, {reader: 'nli', task: 'sts', labelRange: {values: [0, 0.5, 1]}, path: 'bad', splits: ['dev']}, `${join(root, 'bad/labels.dev')}:2: label: expected entailment, neutral or contradiction, got "maybe"`)
    await fails(root, {reader: 'nli', task: 'sts', labelRange: {values: [0, 0.5, 1]}, path: 'short', splits: ['dev']}, `${join(root, 'short/labels.dev')}:2: parallel files differ in length: ${join(root, 'short/s2.dev')} ended before line 2`)

    const trip = await run(root, {reader: 'nli', task: 'ir', splits: {dev: 'trip.jsonl'}, options: {format: 'triplets', splitField: 'split'}}, true)
    assert.equal(trip.rows, 1)
    assert.equal(trip.rejected, 1) // line 3 has no positive
    assert.equal(trip.datasets[0].unused, 1) // line 2 belongs to a split not configured
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('parquet: HF-style columns incl. list columns, by row group; missing column, NaN and out-of-range scores name file:row', async () => {
  const {parquetWriteFile} = await import('hyparquet-writer')
  const root = tmp()
  try {
    const ok = join(root, 'ok.parquet')
    parquetWriteFile({
      filename: ok,
      rowGroupSize: 2,
      columnData: [
        {name: 'sentence1', data: ['a', 'b', 'c'], type: 'STRING'},
        {name: 'sentence2', data: ['x', 'y', 'z'], type: 'STRING'},
        {name: 'score', data: [4.5, 0, 5], type: 'DOUBLE'},
      ],
    })
    const r = await run(root, {reader: 'parquet', task: 'sts', labelRange: {min: 0, max: 5}, splits: {test: 'ok.parquet'}, fields: {text1: 'sentence1', text2: 'sentence2', score: 'score'}})
    assert.equal(r.rows, 3)
    assert.deepEqual((await readAllRecords(join(root, 'out', 'd', 'test.sts-pair.arrow'), 'sts-pair')).map((x) => [x.id, x.text1, x.score]), [
      ['1', 'a', 0.9],
      ['2', 'b', 0],
      ['3', 'c', 1],
    ].map(([i, t, s]) => [i, t, Math.fround(s as number)]))

    const irFile = join(root, 'ir.parquet')
    parquetWriteFile({
      filename: irFile,
      columnData: [
        {name: 'query', data: ['q1', 'q2'], type: 'STRING'},
        {name: 'pos', data: [['p1'], ['p2', 'p3']]},
        {name: 'neg', data: [['n1'], []]},
      ],
    })
    await run(root, {reader: 'parquet', task: 'ir', splits: {train: 'ir.parquet'}, fields: {query: 'query', positives: 'pos', negatives: 'neg'}})
    assert.deepEqual((await readAllRecords(join(root, 'out', 'd', 'train.ir-example.arrow'), 'ir-example')).map((e) => [e.query, e.positives, e.negatives]), [
      ['q1', ['p1'], ['n1']],
      ['q2', ['p2', 'p3'], []],
    ])

    // A hub-style directory with splits side by side: each split reads only its own shards.
    mkdirSync(join(root, 'hub', 'data'), {recursive: true})
    for (const [name, words] of [['train-00000-of-00002.parquet', ['t1', 't2']], ['train-00001-of-00002.parquet', ['t3']], ['test-00000-of-00001.parquet', ['s1']]] as const)
      parquetWriteFile({
        filename: join(root, 'hub', 'data', name),
        columnData: [
          {name: 'sentence1', data: [...words], type: 'STRING'},
          {name: 'sentence2', data: words.map((w) => w + '!'), type: 'STRING'},
          {name: 'score', data: words.map(() => 1), type: 'DOUBLE'},
        ],
      })
    const hub = await run(root, {reader: 'parquet', task: 'sts', labelRange: {min: 0, max: 5}, splits: {train: 'hub/data', test: 'hub/data'}, fields: {text1: 'sentence1', text2: 'sentence2', score: 'score'}})
    assert.deepEqual(hub.datasets[0].files.map((f) => [f.path, f.rows]), [
      ['d/train.sts-pair.arrow', 3],
      ['d/test.sts-pair.arrow', 1],
    ])

    const bad = join(root, 'bad.parquet')
    parquetWriteFile({
      filename: bad,
      rowGroupSize: 2,
      columnData: [
        {name: 'sentence1', data: ['a', 'b', 'c'], type: 'STRING'},
        {name: 'sentence2', data: ['x', 'y', 'z'], type: 'STRING'},
        {name: 'score', data: [1, 7, NaN], type: 'DOUBLE'},
      ],
    })
    const sts = {reader: 'parquet', task: 'sts' as const, labelRange: {min: 0, max: 5}, splits: {test: 'bad.parquet'}}
    await fails(root, {...sts, fields: {text1: 'sentence1', text2: 'sentence2', score: 'label'}}, `${bad}:1: no column "label" (wanted for score); the columns are "sentence1", "sentence2", "score"`)
    await fails(root, {...sts, fields: {text1: 'sentence1', text2: 'sentence2', score: 'score'}}, `${bad}:2: score: label 7 is outside the declared label range [0, 5]`)
    const skipped = await run(root, {...sts, fields: {text1: 'sentence1', text2: 'sentence2', score: 'score'}}, true)
    assert.equal(skipped.rows, 1)
    const rejects = readFileSync(join(root, 'out', 'd', 'rejects.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    assert.deepEqual(rejects.map((x) => [x.line, x.reason]), [
      [2, 'score: label 7 is outside the declared label range [0, 5]'],
      [3, 'score: expected a finite number, got NaN'],
    ])
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('hf-arrow: Arrow stream files as HF datasets writes them (int64 ClassLabel, list column, save_to_disk state.json); bad rows name file:row', async () => {
  const root = tmp()
  try {
    const dir = join(root, 'saved', 'train')
    mkdirSync(dir, {recursive: true})
    const shard = (name: string, s1: string[], s2: string[], label: bigint[]) => {
      const table = new Table({
        sentence1: vectorFromArray(s1, new Utf8()),
        sentence2: vectorFromArray(s2, new Utf8()),
        label: vectorFromArray(label, new Int64()),
        tags: vectorFromArray(s1.map((s) => [s]), new List(new Field('item', new Utf8(), true))),
      })
      const schema = new Schema(table.schema.fields, new Map([['huggingface', '{"info": {"features": {}}}']]))
      const writer = new RecordBatchStreamWriter()
      writer.reset(undefined, schema)
      for (const b of table.batches) writer.write(b)
      writer.finish()
      writeFileSync(join(dir, name), writer.toUint8Array(true))
    }
    shard('data-00000-of-00002.arrow', ['a', 'b'], ['x', 'y'], [0n, 1n])
    shard('data-00001-of-00002.arrow', ['c'], ['z'], [1n])
    writeFileSync(join(dir, 'state.json'), JSON.stringify({_data_files: [{filename: 'data-00000-of-00002.arrow'}, {filename: 'data-00001-of-00002.arrow'}]}))
    const ds = {reader: 'hf-arrow', ...sts01, fields: {text1: 'sentence1', text2: 'sentence2', score: 'label'}}
    const r = await run(root, {...ds, splits: {train: 'saved/train'}})
    assert.equal(r.rows, 3)
    assert.deepEqual((await readAllRecords(join(root, 'out', 'd', 'train.sts-pair.arrow'), 'sts-pair')).map((x) => [x.text1, x.raw_score]), [
      ['a', 0],
      ['b', 1],
      ['c', 1],
    ])
    // A list column maps to IR positives.
    await run(root, {reader: 'hf-arrow', task: 'ir', splits: {train: 'saved/train/data-00001-of-00002.arrow'}, fields: {query: 'sentence2', positives: 'tags'}})
    assert.deepEqual((await readAllRecords(join(root, 'out', 'd', 'train.ir-example.arrow'), 'ir-example')).map((x) => [x.query, x.positives]), [['z', ['c']]])

    const second = join(dir, 'data-00001-of-00002.arrow')
    await fails(root, {reader: 'hf-arrow', task: 'sts', labelRange: {values: [0, 0.5]}, fields: {text1: 'sentence1', text2: 'sentence2', score: 'label'}, splits: {train: 'saved/train'}}, `${join(dir, 'data-00000-of-00002.arrow')}:2: score: label 1 is outside the declared label range {0, 0.5}`)
    await fails(root, {...ds, fields: {text1: 'premise', text2: 'sentence2', score: 'label'}, splits: {train: 'saved/train/data-00001-of-00002.arrow'}}, `${second}:1: no column "premise" (wanted for text1)`)
    // Float64 NaN score.
    const nanFile = join(root, 'nan.arrow')
    const t = new Table({s1: vectorFromArray(['a', 'b'], new Utf8()), s2: vectorFromArray(['c', 'd'], new Utf8()), y: vectorFromArray([1, NaN], new Float64())})
    const w = new RecordBatchStreamWriter()
    w.writeAll(t)
    writeFileSync(nanFile, w.toUint8Array(true))
    await fails(root, {reader: 'hf-arrow', ...sts01, fields: {text1: 's1', text2: 's2', score: 'y'}, splits: {x: 'nan.arrow'}}, `${nanFile}:2: score: expected a finite number, got NaN`)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('--skip-invalid accounts for every input row: rows + rejected = input, rejects.jsonl has file, line, reason', async () => {
  const lines = [
    'a\tb\t1', // ok
    'a\tb', // wrong column count
    'a\tb\t0', // ok
    'a\t\t1', // empty text
    'a\tb\tNaN', // NaN
    'a\tb\t3', // out of range
    'c\td\t0', // ok
  ]
  const root = dataRoot({'x.tsv': lines.join('\n') + '\n'})
  try {
    const r = await run(root, {reader: 'delimited', ...sts01, splits: {test: 'x.tsv'}, options: {columns: 3}}, true)
    assert.equal(r.rows + r.rejected, lines.length)
    assert.equal(r.rows, 3)
    assert.equal(r.rejected, 4)
    const res = r.datasets[0]
    assert.equal(res.rejectsFile, join('d', 'rejects.jsonl'))
    assert.equal(res.stats['d/test.sts-pair.arrow'].rejected, 4)
    const rejects = readFileSync(join(root, 'out', 'd', 'rejects.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
    assert.deepEqual(
      rejects.map((x) => [x.file, x.line, x.reason]),
      [
        ['x.tsv', 2, 'wrong column count: expected 3 fields, got 2'],
        ['x.tsv', 4, 'text2: empty text'],
        ['x.tsv', 5, 'score: expected a number, got "NaN"'],
        ['x.tsv', 6, 'score: label 3 is outside the declared label range {0, 1}'],
      ],
    )
    assert.equal(rejects[0].raw, 'a\tb')
    const manifest = JSON.parse(readFileSync(join(root, 'out', 'manifest.json'), 'utf8'))
    assert.equal(manifest.datasets.d.rejected, 4)
    assert.equal(manifest.files[0].rows, 3)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})

test('registry: eight built-in readers, each with an options schema, its tasks, and a module exporting {reader, optionsSchema}', async () => {
  const {builtinRegistry} = await import('../../../src/builtins.js')
  const {readerOptionsSchema} = await import('../../../src/data/readers/options.js')
  const registry = await builtinRegistry()
  const readers = registry.list('reader')
  assert.deepEqual(readers.map((r) => r.name), ['beir', 'codiemb-jsonl', 'delimited', 'flagembedding-jsonl', 'hf-arrow', 'json', 'nli', 'parquet'])
  for (const entry of readers) {
    assert.equal((entry.optionsSchema as {additionalProperties?: boolean}).additionalProperties, false, entry.name)
    assert.equal(entry.optionsSchema, readerOptionsSchema[entry.name])
    const mod = (await entry.load()) as {reader: {tasks: string[]; read: unknown}; optionsSchema: unknown}
    assert.equal(mod.optionsSchema, entry.optionsSchema)
    assert.deepEqual([...mod.reader.tasks].sort(), [...(entry.meta!.tasks as string[])].sort())
    assert.equal(typeof mod.reader.read, 'function')
  }
})

test('beir: the hub layout (corpus/queries parquet shards with id, qrels {qid, pid, score} in a separate -qrels repository)', async () => {
  const {parquetWriteFile} = await import('hyparquet-writer')
  const root = tmp()
  try {
    mkdirSync(join(root, 'T2', 'data'), {recursive: true})
    mkdirSync(join(root, 'T2-qrels', 'data'), {recursive: true})
    parquetWriteFile({filename: join(root, 'T2', 'data', 'corpus-00000-of-00001.parquet'), columnData: [{name: 'id', data: ['d1', 'd2', 'd3'], type: 'STRING'}, {name: 'text', data: ['文档一', '文档二', '文档三'], type: 'STRING'}]})
    parquetWriteFile({filename: join(root, 'T2', 'data', 'queries-00000-of-00001.parquet'), columnData: [{name: 'id', data: ['q1', 'q2'], type: 'STRING'}, {name: 'text', data: ['问题一', '问题二'], type: 'STRING'}]})
    const qrels = join(root, 'T2-qrels', 'data', 'dev-00000-of-00001.parquet')
    parquetWriteFile({filename: qrels, columnData: [{name: 'qid', data: ['q1', 'q2', 'q2'], type: 'STRING'}, {name: 'pid', data: ['d1', 'd2', 'd3'], type: 'STRING'}, {name: 'score', data: [1, 1, 1], type: 'INT32'}]})
    const r = await run(root, {reader: 'beir', task: 'eval', path: 'T2', splits: {dev: 'T2-qrels'}})
    assert.deepEqual(r.datasets[0].files.map((f) => [f.path, f.rows]), [
      ['d/corpus.arrow', 3],
      ['d/queries.arrow', 2],
      ['d/dev.qrels.arrow', 3],
    ])
    assert.deepEqual(await readAllRecords(join(root, 'out', 'd', 'corpus.arrow'), 'corpus'), [
      {id: 'd1', title: '', text: '文档一'},
      {id: 'd2', title: '', text: '文档二'},
      {id: 'd3', title: '', text: '文档三'},
    ])
    const ir = await run(root, {reader: 'beir', task: 'ir', path: 'T2', splits: {dev: 'T2-qrels'}})
    assert.deepEqual((await readAllRecords(join(root, 'out', 'd', 'dev.ir-example.arrow'), 'ir-example')).map((e) => [e.query, e.positives]), [
      ['问题一', ['文档一']],
      ['问题二', ['文档二', '文档三']],
    ])
    assert.equal(ir.rows, 2)
    parquetWriteFile({filename: qrels, columnData: [{name: 'qid', data: ['q1', 'q2'], type: 'STRING'}, {name: 'pid', data: ['d1', 'd9'], type: 'STRING'}, {name: 'score', data: [1, 1], type: 'INT32'}]})
    await fails(root, {reader: 'beir', task: 'eval', path: 'T2', splits: {dev: 'T2-qrels'}}, `${qrels}:2: corpus_id: "d9" is not a known document (dangling qrels)`)
  } finally {
    rmSync(root, {recursive: true, force: true})
  }
})
