/**
 * Streamed corpora (src/eval/corpus-source.ts, text-source.ts): eval and mine read a prepared Arrow
 * corpus a slice at a time, and must give exactly what reading it whole gave:
 * - the reader: ids, slices across record-batch boundaries, rows read out of order and the cache
 *   hash equal the in-memory rows (titles empty, blank, padded; multi-byte UTF-8; padded bodies);
 * - eval: SciFact (../shared) as a prepared Arrow corpus in many record batches, streamed, scores
 *   exactly as the BEIR layout read whole, and the embedding cache entries of one serve the other;
 * - mine: the streamed corpus writes the same mined file as the corpus read whole;
 * - a damaged record batch is refused when read, naming the file and the batch (exit 2 through
 *   `codiemb eval` and `codiemb mine`).
 */
import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import * as tf from '@tensorflow/tfjs-core'
import {ArrowRecordWriter, RecordFile, readAllRecords} from '../../src/io/arrow-records.js'
import {ArrowCorpus, evalPassage, minePassage} from '../../src/eval/corpus-source.js'
import {hashTexts, EmbeddingStore} from '../../src/eval/embedding-cache.js'
import {evaluateTask} from '../../src/eval/evaluate.js'
import {mineHardNegatives} from '../../src/eval/mine.js'
import {readRows, TaskDataError} from '../../src/eval/task-data.js'
import {BEIR_TASKS} from '../../src/eval/benchmarks/beir.js'
import {ArrayTextSource} from '../../src/eval/text-source.js'
import {Rng} from '../../src/core/rng.js'
import {shared, useTestBackend} from '../helpers/env.js'
import {HashingEncoder} from './fixtures.js'
import {runCommand} from './run-command.js'

let work: string
before(() => {
  work = mkdtempSync(join(tmpdir(), 'codiemb-corpus-source-'))
})
after(() => rmSync(work, {recursive: true, force: true}))

interface Doc {
  id: string
  title: string
  text: string
}

async function writeCorpus(file: string, docs: readonly Doc[], batchRows: number): Promise<void> {
  const w = new ArrowRecordWriter(file, 'corpus', {batchRows})
  for (const d of docs) w.write(d)
  await w.finish()
}

/** Flips one byte in the middle of record batch `index`'s body. */
async function damageBatch(file: string, index: number): Promise<void> {
  const records = await RecordFile.open(file)
  const place = records.batchPlace(index)
  await records.close()
  const bytes = readFileSync(file)
  const at = place.bodyStart + Math.floor((place.offset + place.length - place.bodyStart) / 2)
  bytes[at] ^= 0x55
  writeFileSync(file, bytes)
}

describe('streamed corpus reader', () => {
  it('gives the ids, slices, rows and cache hash of the rows read whole', async () => {
    const random = new Rng(5)
    const titles = ['', '  ', ' 标题 ', 'Title', '題名\u3000']
    const docs: Doc[] = Array.from({length: 53}, (_, i) => ({
      id: `d${i}`,
      title: titles[random.int(titles.length)]!,
      text: `${i % 3 === 0 ? '  ' : ''}段落 ${i} passage ${'é'.repeat(random.int(5))}${i % 4 === 0 ? ' \n' : ''}`,
    }))
    const file = join(work, 'small.arrow')
    await writeCorpus(file, docs, 7)
    const rows = await readAllRecords(file, 'corpus')
    for (const passage of [evalPassage, minePassage]) {
      const expected = rows.map((r) => passage(r.title, r.text))
      const corpus = (await ArrowCorpus.open(file, passage))!
      try {
        assert.equal(corpus.count, 53)
        assert.deepEqual(await corpus.ids(), docs.map((d) => d.id))
        for (const [from, to] of [[0, 53], [0, 7], [5, 16], [13, 14], [50, 80], [53, 60]] as const) assert.deepEqual(await corpus.slice(from, to), expected.slice(from, to), `slice ${from}–${to}`)
        const asked = [52, 0, 7, 7, 30, 6, 1]
        assert.deepEqual(await corpus.at(asked), asked.map((r) => expected[r]))
        assert.equal(await corpus.hash(), hashTexts(expected))
        assert.equal(await corpus.hash(), await new ArrayTextSource(expected).hash())
        const columns = await corpus.columns(10, 20)
        assert.deepEqual(columns.texts, docs.slice(10, 20).map((d) => d.text))
      } finally {
        await corpus.close()
      }
    }
    // the two joins differ only on an untitled body with white space around it
    assert.equal(evalPassage('', '  x '), 'x')
    assert.equal(minePassage('', '  x '), '  x ')
    assert.equal(evalPassage(' T ', ' x '), 'T  x')
  })

  it('refuses a damaged record batch when it is first read, naming the file and the batch', async () => {
    const docs = Array.from({length: 40}, (_, i) => ({id: `d${i}`, title: '', text: `passage number ${i}`}))
    const file = join(work, 'damaged.arrow')
    await writeCorpus(file, docs, 10)
    await damageBatch(file, 2)
    const corpus = (await ArrowCorpus.open(file, evalPassage))!
    try {
      assert.deepEqual(await corpus.slice(0, 20), docs.slice(0, 20).map((d) => d.text), 'batches 0 and 1 are intact')
      await assert.rejects(corpus.slice(15, 25), (e: Error) => e instanceof TaskDataError && e.message.startsWith(file) && /record batch 2 of 4 .* is damaged/.test(e.message))
      await assert.rejects(corpus.ids(), TaskDataError)
    } finally {
      await corpus.close()
    }
  })
})

/** SciFact (../shared, BEIR layout) also written as prepared Arrow files: corpus in record batches of 700 rows. */
async function scifactBoth(scifact: string): Promise<{arrowDir: string; docs: number}> {
  const arrowDir = join(work, 'scifact-arrow')
  mkdirSync(arrowDir, {recursive: true})
  const corpus = await readRows(join(scifact, 'corpus.jsonl'))
  await writeCorpus(join(arrowDir, 'corpus.arrow'), corpus.map((r) => ({id: String(r._id), title: String(r.title ?? ''), text: String(r.text)})), 700)
  const queries = new ArrowRecordWriter(join(arrowDir, 'queries.arrow'), 'queries')
  for (const r of await readRows(join(scifact, 'queries.jsonl'))) queries.write({id: String(r._id), text: String(r.text), instruction: ''})
  await queries.finish()
  const qrels = new ArrowRecordWriter(join(arrowDir, 'qrels-test.arrow'), 'qrels')
  for (const r of await readRows(join(scifact, 'qrels', 'test.tsv'))) qrels.write({query_id: String(r['query-id']), corpus_id: String(r['corpus-id']), score: Number(r.score)})
  await qrels.finish()
  return {arrowDir, docs: corpus.length}
}

describe('eval and mine on a streamed corpus', () => {
  it('eval: SciFact streamed from Arrow scores exactly as read whole, and shares its cache entries', async (t) => {
    const scifact = shared(t, 'data', 'scifact')
    if (!scifact) return
    await useTestBackend()
    const {arrowDir, docs} = await scifactBoth(scifact)
    const sciFact = BEIR_TASKS.find((x) => x.name === 'SciFact')!
    const whole = {...sciFact, localNames: [scifact]}
    const streamed = {...sciFact, localNames: [], files: {corpus: join(arrowDir, 'corpus.arrow'), queries: join(arrowDir, 'queries.arrow'), qrels: join(arrowDir, 'qrels-test.arrow')}}
    const options = {dataDir: work, limit: 60, corpusChunkSize: 1000, geometry: true}
    const tensors = tf.memory().numTensors
    const a = await evaluateTask(new HashingEncoder(), whole, options)
    const b = await evaluateTask(new HashingEncoder(), streamed, options)
    assert.equal(tf.memory().numTensors, tensors)
    assert.equal(b.counts.documents, docs)
    assert.deepEqual(b.scores, a.scores)
    assert.deepEqual(b.counts, a.counts)
    assert.deepEqual(b.geometry, a.geometry)
    // with a cache: entries written by the streamed run serve the run that reads the corpus whole (same text hash)
    const cacheDir = join(work, 'scifact-cache')
    const c = await evaluateTask(new HashingEncoder(), streamed, {...options, store: new EmbeddingStore(cacheDir)})
    assert.deepEqual(c.cache, {hits: 0, misses: 2})
    const encoder = new HashingEncoder()
    const d = await evaluateTask(encoder, whole, {...options, store: new EmbeddingStore(cacheDir)})
    assert.deepEqual(d.cache, {hits: 2, misses: 0})
    assert.equal(encoder.encoded, 0)
    assert.deepEqual(c.scores, a.scores)
    assert.deepEqual(d.scores, a.scores)
  })

  it('mine: the streamed corpus writes the same file as the corpus read whole', async (t) => {
    const file = shared(t, 'data', 'stsb-zh-hardneg', 'bge_finetune_data.jsonl')
    if (!file) return
    await useTestBackend()
    const dir = join(work, 'mine')
    mkdirSync(dir, {recursive: true})
    const rows = readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(0, 80).map((l) => JSON.parse(l) as {query: string; pos: string[]; neg: string[]})
    const texts = [...new Set(rows.flatMap((r) => [...r.pos, ...r.neg]))]
    // some documents titled (a positive given as text then matches the body only), some padded
    await writeCorpus(join(dir, 'corpus.arrow'), texts.map((text, i) => ({id: `c${i}`, title: i % 5 === 0 ? `标题${i}` : '', text: i % 7 === 0 ? ` ${text} ` : text})), 64)
    const input = new ArrowRecordWriter(join(dir, 'ir.arrow'), 'ir-example')
    rows.forEach((r, i) => input.write({id: `q${i}`, query: r.query, instruction: '', positives: r.pos, negatives: r.neg.slice(0, 1), positive_scores: null, negative_scores: null}))
    await input.finish()
    for (const extra of [{}, {skipTop: 2, maxScoreRatio: 0.9}]) {
      const options = {input: join(dir, 'ir.arrow'), corpus: join(dir, 'corpus.arrow'), topK: 6, ...extra}
      const streamed = await mineHardNegatives(new HashingEncoder(), {...options, out: join(dir, 'streamed.arrow')})
      const whole = await mineHardNegatives(new HashingEncoder(), {...options, out: join(dir, 'whole.arrow'), inMemory: true})
      assert.deepEqual({...streamed, out: ''}, {...whole, out: ''})
      assert.ok(streamed.minedNegatives > 0)
      assert.deepEqual(await readAllRecords(join(dir, 'streamed.arrow'), 'ir-example'), await readAllRecords(join(dir, 'whole.arrow'), 'ir-example'))
      assert.deepEqual(readFileSync(join(dir, 'streamed.arrow')), readFileSync(join(dir, 'whole.arrow')), 'byte-identical files')
    }
  })

  it('`codiemb eval` and `codiemb mine` refuse a damaged corpus record batch with exit 2, naming file and batch', async (t) => {
    const model = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
    if (!model) return
    const dir = join(work, 'damaged-cli')
    const data = join(dir, 'data', 'tiny')
    mkdirSync(data, {recursive: true})
    const docs = Array.from({length: 60}, (_, i) => ({id: `d${i}`, title: '', text: `document ${i} about topic ${i % 7}`}))
    await writeCorpus(join(data, 'corpus.arrow'), docs, 16)
    await damageBatch(join(data, 'corpus.arrow'), 1)
    const queries = new ArrowRecordWriter(join(data, 'queries.arrow'), 'queries')
    const qrels = new ArrowRecordWriter(join(data, 'qrels.arrow'), 'qrels')
    for (let i = 0; i < 5; i++) {
      queries.write({id: `q${i}`, text: `topic ${i}`, instruction: ''})
      qrels.write({query_id: `q${i}`, corpus_id: `d${i}`, score: 1})
    }
    await queries.finish()
    await qrels.finish()
    const config = join(dir, 'eval.json')
    writeFileSync(config, JSON.stringify({eval: {tasks: [{name: 'Tiny', type: 'retrieval', split: 'test', dir: 'tiny'}], maxLength: 16}}))
    const file = join(data, 'corpus.arrow')
    const r = runCommand('eval', ['--model', model, '--config', config, '--data-dir', join(dir, 'data'), '--out', join(dir, 'results'), '--backend', 'cpu', '--json'])
    assert.equal(r.status, 2, r.stderr + r.stdout)
    assert.ok(r.json.message.includes(`${file}: record batch 1 of 4`), r.json.message)
    assert.match(r.json.message, /is damaged/)

    const input = new ArrowRecordWriter(join(dir, 'ir.arrow'), 'ir-example')
    input.write({id: 'e0', query: 'topic 1', instruction: '', positives: ['document 1 about topic 1'], negatives: [], positive_scores: null, negative_scores: null})
    await input.finish()
    const m = runCommand('mine', ['--model', model, '--input', join(dir, 'ir.arrow'), '--corpus', file, '--out', join(dir, 'mined.arrow'), '--top-k', '2', '--backend', 'cpu', '--json'])
    assert.equal(m.status, 2, m.stderr + m.stdout)
    assert.ok(m.json.message.includes(`${file}: record batch 1 of 4`), m.json.message)
  })
})
