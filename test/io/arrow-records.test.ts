import {test} from 'node:test'
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {tableFromIPC} from 'apache-arrow'
import {
  ArrowRecordWriter,
  readAllRecords,
  readArrowMeta,
  readRecords,
  type IrExampleRecord,
  type StsPairRecord,
} from '../../src/io/arrow-records.js'

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'codiemb-arrow-'))
}

test('ir-example rows round-trip across several record batches, nullable scores included', async () => {
  const dir = tmp()
  try {
    const file = join(dir, 'ir.arrow')
    const w = new ArrowRecordWriter(file, 'ir-example', {batchRows: 3, metadata: {'codiemb.dataset': 'toy', 'codiemb.task': 'ir'}})
    const rows: IrExampleRecord[] = []
    for (let i = 0; i < 10; i++) {
      rows.push({
        id: `q${i}`,
        query: `query ${i} — ünïcode 中文`,
        instruction: i % 2 ? 'Retrieve passages' : '',
        positives: [`pos ${i}`, `pos ${i} b`].slice(0, 1 + (i % 2)),
        negatives: i % 3 === 0 ? [] : [`neg ${i}`],
        positive_scores: i % 2 ? [1, 0.5] : null,
        negative_scores: null,
      })
    }
    for (const r of rows) w.write(r)
    assert.equal(existsSync(file), false, 'nothing under the final name before finish()')
    const done = await w.finish()
    assert.equal(done.rows, 10)
    assert.equal(done.sha256, createHash('sha256').update(readFileSync(file)).digest('hex'))
    assert.equal(done.bytes, readFileSync(file).byteLength)
    assert.deepEqual(readdirSync(dir), ['ir.arrow'], 'no temporary file left behind')
    const back = await readAllRecords(file, 'ir-example')
    assert.deepEqual(back, rows)
    const meta = await readArrowMeta(file)
    assert.equal(meta.kind, 'ir-example')
    assert.equal(meta.dataset, 'toy')
    assert.equal(meta.task, 'ir')
    assert.equal(meta.rows, 10)
    assert.equal(meta.batches, 4)
    assert.deepEqual(meta.fields.map((f) => f.name), ['id', 'query', 'instruction', 'positives', 'negatives', 'positive_scores', 'negative_scores'])
    // Any Arrow implementation can read it: check with apache-arrow's own whole-table reader.
    const table = tableFromIPC(readFileSync(file))
    assert.equal(table.numRows, 10)
    assert.equal(table.schema.metadata.get('codiemb.kind'), 'ir-example')
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('sts-pair, corpus, queries, qrels and embeddings round-trip; float32 precision kept', async () => {
  const dir = tmp()
  try {
    const sts: StsPairRecord[] = [
      {id: '1', text1: 'a', text2: 'b', score: 0.76, raw_score: 3.8, instruction: ''},
      {id: '2', text1: 'c', text2: 'd', score: 0, raw_score: 0, instruction: 'x'},
    ]
    const f1 = join(dir, 'sts.arrow')
    const w1 = new ArrowRecordWriter(f1, 'sts-pair')
    for (const r of sts) w1.write(r)
    await w1.finish()
    const back = await readAllRecords(f1, 'sts-pair')
    assert.equal(back.length, 2)
    assert.equal(back[0].score, Math.fround(0.76))
    assert.equal(back[0].raw_score, Math.fround(3.8))
    assert.equal(back[1].instruction, 'x')

    const f2 = join(dir, 'qrels.arrow')
    const w2 = new ArrowRecordWriter(f2, 'qrels')
    w2.write({query_id: 'q', corpus_id: 'd', score: 2})
    await w2.finish()
    assert.deepEqual(await readAllRecords(f2, 'qrels'), [{query_id: 'q', corpus_id: 'd', score: 2}])

    const f3 = join(dir, 'corpus.arrow')
    const w3 = new ArrowRecordWriter(f3, 'corpus')
    w3.write({id: 'd', title: '', text: 't'})
    await w3.finish()
    assert.deepEqual(await readAllRecords(f3, 'corpus'), [{id: 'd', title: '', text: 't'}])

    const f4 = join(dir, 'queries.arrow')
    const w4 = new ArrowRecordWriter(f4, 'queries')
    w4.write({id: 'q', text: 'what', instruction: 'Given a claim'})
    await w4.finish()
    assert.deepEqual(await readAllRecords(f4, 'queries'), [{id: 'q', text: 'what', instruction: 'Given a claim'}])

    const f5 = join(dir, 'emb.arrow')
    const w5 = new ArrowRecordWriter(f5, 'embeddings', {dim: 3, batchRows: 1})
    w5.write({id: 'a', text: 'x', vector: new Float32Array([1, 2, 3])})
    w5.write({id: 'b', text: 'y', vector: new Float32Array([-1, 0.5, 0])})
    await w5.finish()
    const emb = await readAllRecords(f5, 'embeddings')
    assert.ok(emb[1].vector instanceof Float32Array)
    assert.deepEqual(Array.from(emb[1].vector), [-1, 0.5, 0])
    assert.equal((await readArrowMeta(f5)).metadata['codiemb.dim'], '3')

    const empty = join(dir, 'empty.arrow')
    await new ArrowRecordWriter(empty, 'corpus').finish()
    assert.deepEqual(await readAllRecords(empty, 'corpus'), [])
    assert.equal((await readArrowMeta(empty)).rows, 0)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('abort() and a failing write leave no file presented as complete', async () => {
  const dir = tmp()
  try {
    const file = join(dir, 'x.arrow')
    writeFileSync(file, 'previous complete output')
    const w = new ArrowRecordWriter(file, 'corpus', {batchRows: 2})
    w.write({id: '1', title: '', text: 'a'})
    w.write({id: '2', title: '', text: 'b'})
    assert.throws(() => {
      w.write({id: '3', title: '', text: 'c'})
      w.write({id: null as unknown as string, title: '', text: 'd'})
    }, /field "id" must not be null/)
    w.abort()
    assert.deepEqual(readdirSync(dir), ['x.arrow'])
    assert.equal(readFileSync(file, 'utf8'), 'previous complete output', 'the old file is untouched')
    assert.throws(() => w.write({id: '4', title: '', text: 'e'}), /writer is aborted/)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('readRecords refuses a file of another kind, and a non-Arrow file, naming the file', async () => {
  const dir = tmp()
  try {
    const file = join(dir, 'c.arrow')
    const w = new ArrowRecordWriter(file, 'corpus')
    w.write({id: '1', title: '', text: 'a'})
    await w.finish()
    await assert.rejects(readAllRecords(file, 'sts-pair'), (e: Error) => e.message.includes(file) && /expected a codiemb "sts-pair"/.test(e.message))
    const junk = join(dir, 'junk.arrow')
    writeFileSync(junk, 'not arrow at all\n')
    await assert.rejects(readAllRecords(junk), (e: Error) => e.message.includes(junk))
    await assert.rejects(readAllRecords(join(dir, 'missing.arrow')), /cannot open Arrow file/)
    // Streaming: breaking out early closes the file cleanly.
    for await (const row of readRecords(file, 'corpus')) {
      assert.equal(row.id, '1')
      break
    }
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})

test('readArrowMeta reads the row count from the footer of our files, and counts batches of other Arrow files', async () => {
  const {tableToIPC, tableFromArrays} = await import('apache-arrow')
  const dir = tmp()
  try {
    const file = join(dir, 'q.arrow')
    const w = new ArrowRecordWriter(file, 'qrels', {batchRows: 2})
    for (let i = 0; i < 5; i++) w.write({query_id: `q${i}`, corpus_id: 'd', score: 1})
    await w.finish()
    const meta = await readArrowMeta(file)
    assert.equal(meta.metadata['codiemb.rows'], '5')
    assert.equal(meta.rows, 5)
    assert.equal(meta.batches, 3)
    const other = join(dir, 'other.arrow')
    writeFileSync(other, tableToIPC(tableFromArrays({a: Float32Array.from([1, 2, 3])}), 'file'))
    const m2 = await readArrowMeta(other)
    assert.equal(m2.rows, 3)
    assert.equal(m2.kind, undefined)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
})
