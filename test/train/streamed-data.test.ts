/**
 * The streamed training data path (src/io/record-rows.ts, train/data-file.ts openTrainingFile):
 * opening a prepared file reads no text byte; its usable rows, dropped rows and row values are the
 * in-memory reader's; and a trainer fed from the files trains bit-identical parameters to one fed
 * from the same rows in memory (on every backend the suite runs on).
 */
import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'
import {ArrowRecordWriter, RecordFile, readAllRecords, type IrExampleRecord, type StsPairRecord} from '../../src/io/arrow-records.js'
import {RecordRows} from '../../src/io/record-rows.js'
import {closeTrainingData, loadTrainingDataset, readRows, type RowSource, type TrainingDataset} from '../../src/train/data.js'
import {ensureGradients} from '../../src/train/gradients.js'
import {useTestBackend} from '../helpers/env.js'
import {ToyEncoder} from '../helpers/toy-encoder.js'
import {makeTrainer, weightsOf} from './fixtures.js'

const WORDS = ['red', 'green', 'blue', 'apple', 'river', 'engine', 'violin', 'garden', 'comet', 'ladder', '河流', 'café', 'naïve', '😀']
const word = (i: number) => WORDS[((i % WORDS.length) + WORDS.length) % WORDS.length]!

/** IR rows with 0–5 negatives (those with fewer than 3 are dropped by a 3-negative loss), some with scores. */
function irRows(n: number): IrExampleRecord[] {
  return Array.from({length: n}, (_, i) => {
    const negatives = Array.from({length: i % 6}, (_, k) => `the ${word(i + k)} ${word(3 * i + k + 1)} ${'x'.repeat(k)}`)
    const positives = Array.from({length: 1 + (i % 2)}, (_, k) => `a ${word(i)} ${word(i + 5 + k)}`)
    const scored = i % 4 === 0
    return {
      id: `q${i}`,
      query: `which ${word(i)} is ${word(i * 7)}?`,
      instruction: i % 3 ? 'find the passage' : '',
      positives,
      negatives,
      positive_scores: scored ? positives.map((_, k) => 1 - k / 8) : null,
      negative_scores: scored ? negatives.map((_, k) => k / 8) : null,
    }
  })
}

function stsRows(n: number): StsPairRecord[] {
  return Array.from({length: n}, (_, i) => ({id: `s${i}`, text1: `the ${word(i)} is here`, text2: `here is the ${word(i * 5 + 1)}`, score: (i % 6) / 5, raw_score: i % 6, instruction: 'rate it'}))
}

async function write(file: string, kind: 'ir-example' | 'sts-pair', rows: object[], batchRows: number): Promise<void> {
  const writer = new ArrowRecordWriter(file, kind, {batchRows, metadata: {'codiemb.dataset': kind}})
  await writer.writeAll(rows as never)
  await writer.finish()
}

describe('streamed training data', () => {
  let dir: string
  let irFile: string
  let stsFile: string
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'codiemb-streamed-'))
    irFile = join(dir, 'ir.arrow')
    stsFile = join(dir, 'sts.arrow')
    // Small record batches, so rows of one training batch come from several of them.
    await write(irFile, 'ir-example', irRows(61), 7)
    await write(stsFile, 'sts-pair', stsRows(45), 8)
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('opening reads footers, metadata, offsets and numbers only: not one text byte', async () => {
    for (const file of [irFile, stsFile]) {
      const records = await RecordFile.open(file)
      const rows = await RecordRows.open(records)
      for (const place of rows.batches) await rows.columnsOnly(place.index)
      // The bytes of every Utf8 column's data buffer, at any depth.
      let textBytes = 0
      const visit = (c: RecordRows['batches'][number]['columns'][number]): void => {
        if (String(c.field.type) === 'Utf8') textBytes += c.values!.length
        if (c.child) visit(c.child)
      }
      for (const place of rows.batches) place.columns.forEach(visit)
      const size = statSync(file).size
      assert.ok(textBytes > size / 4, `${file}: the texts are a good part of the file (${textBytes} of ${size} bytes)`)
      assert.ok(rows.stats.bytesRead <= size - textBytes, `${file}: opening read ${rows.stats.bytesRead} bytes; only ${size - textBytes} are not text`)
      assert.equal(rows.stats.batchesVerified, 0)
      // A row read by byte ranges equals the record batch decoded whole; its batch is checksummed first.
      const whole = await records.readBatch(2)
      const local = 3
      const row = await rows.row<Record<string, unknown>>(rows.batches[2]!.firstRow + local)
      const expected = Object.fromEntries(whole.schema.fields.map((f) => {
        const v = whole.getChild(f.name)!.get(local)
        return [f.name, v === null ? null : typeof v === 'object' ? Array.from(v as Iterable<unknown>) : v]
      }))
      assert.deepEqual(row, expected)
      // A text column over a range of rows that spans record batches (what eval and mine would read per encoding chunk).
      if (file === stsFile) {
        const all = await readAllRecords(file, 'sts-pair')
        assert.deepEqual(await rows.texts('text1', 5, 30), all.slice(5, 30).map((r) => r.text1))
      }
      await records.close()
    }
  })

  it('usable rows, dropped rows, file rows and row values are those of the in-memory reader', async () => {
    for (const [file, negatives] of [[irFile, 3], [stsFile, 0]] as const) {
      const memory = await loadTrainingDataset({path: file}, negatives, 0, {inMemory: true})
      const streamed = await loadTrainingDataset({path: file}, negatives)
      assert.ok(Array.isArray(memory.rows) && !Array.isArray(streamed.rows))
      assert.equal(streamed.rows.length, memory.rows.length)
      assert.equal(streamed.dropped, memory.dropped)
      if (file === irFile) assert.ok(memory.dropped > 0 && memory.rows.length > 0)
      assert.deepEqual(Array.from(streamed.fileRows!), Array.from(memory.fileRows!))
      assert.equal(streamed.digest, memory.digest)
      const all = Array.from({length: memory.rows.length}, (_, i) => i)
      // Out of order, as a sampler asks.
      const shuffled = [...all].reverse()
      assert.deepEqual(await readRows(streamed.rows as RowSource<object>, shuffled), await readRows(memory.rows as object[], shuffled))
      const limited = await loadTrainingDataset({path: file, limit: 9, pick: 'random'}, negatives, 4)
      const limitedMemory = await loadTrainingDataset({path: file, limit: 9, pick: 'random'}, negatives, 4, {inMemory: true})
      assert.deepEqual(Array.from(limited.fileRows!), Array.from(limitedMemory.fileRows!))
      assert.deepEqual(await readRows(limited.rows as RowSource<object>, all.slice(0, 9)), limitedMemory.rows)
      await closeTrainingData([streamed, limited])
    }
  })

  it('a trainer fed from the files trains bit-identical parameters to one fed from memory', async () => {
    await useTestBackend()
    await ensureGradients()
    const run = async (inMemory: boolean) => {
      const datasets: TrainingDataset[] = [
        await loadTrainingDataset({path: irFile}, 3, 0, {inMemory}),
        await loadTrainingDataset({path: stsFile}, 0, 0, {inMemory}),
      ]
      const encoder = new ToyEncoder(2, 16, 97, 3)
      try {
        const trainer = makeTrainer({encoder, datasets, epochs: 2, prefetch: 3})
        const summary = await trainer.run()
        trainer.dispose()
        return {summary, weights: await weightsOf(encoder), datasets}
      } finally {
        await closeTrainingData(datasets)
        encoder.dispose()
      }
    }
    const memory = await run(true)
    const streamed = await run(false)
    assert.ok(streamed.summary.steps >= 8, `${streamed.summary.steps} steps`)
    assert.equal(streamed.summary.steps, memory.summary.steps)
    assert.deepEqual(streamed.summary.history.map((h) => h.loss), memory.summary.history.map((h) => h.loss))
    assert.deepEqual(streamed.weights, memory.weights)
    const stats = (streamed.datasets[0]!.rows as RowSource<object>).stats
    assert.ok(stats.batchesVerified > 0 && stats.bytesRead > 0)
  })

  it('a damaged record batch is refused when its first row is read, naming the file and the batch', async () => {
    const bytes = Buffer.from(await import('node:fs').then((fs) => fs.readFileSync(stsFile)))
    const records = await RecordFile.open(stsFile)
    const rows = await RecordRows.open(records)
    const place = rows.batches[3]!
    const text = place.columns.find((c) => c.field.name === 'text1')!.values!
    await records.close()
    const damaged = join(dir, 'damaged.arrow')
    bytes[place.bodyStart + text.offset + 2]! ^= 0x20
    writeFileSync(damaged, bytes)
    const dataset = await loadTrainingDataset({path: damaged}, 0)
    try {
      // Rows of other batches read; the damaged one is refused.
      await readRows(dataset.rows as RowSource<object>, [0, 1, 40])
      await assert.rejects(readRows(dataset.rows as RowSource<object>, [place.firstRow + 1]), (e: Error) => e.name === 'RecordFileError' && e.message.startsWith(`${damaged}: record batch 3 of 6`) && /does not match the checksum/.test(e.message))
    } finally {
      await closeTrainingData([dataset])
    }
  })
})
