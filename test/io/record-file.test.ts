/**
 * Checked record files (src/io/record-file.ts, arrow-checksums.ts, arrow-footer.ts): the writer
 * records a digest per record batch and one over the footer; a reader refuses a file that is empty,
 * truncated or has a changed byte, naming the file (and the batch), before any row of a damaged
 * batch is used, and never runs out of memory on a damaged footer. Files without checksums still read.
 */
import assert from 'node:assert/strict'
import {mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {test} from 'node:test'
import {
  ArrowRecordWriter,
  BATCH_CHECKSUMS_KEY,
  FOOTER_CHECKSUM_KEY,
  RecordFile,
  readAllRecords,
  readArrowMeta,
  readRecords,
  type StsPairRecord,
} from '../../src/io/arrow-records.js'
import {Rng} from '../../src/core/rng.js'
import {writeWithoutChecksums} from '../helpers/arrow-files.js'

const rows = (n: number): StsPairRecord[] => Array.from({length: n}, (_, i) => ({id: `s${i}`, text1: `first ${i}`, text2: `second ${i}`, score: (i % 6) / 5, raw_score: i % 6, instruction: 'rate'}))

async function writeSts(file: string, n: number, batchRows: number): Promise<void> {
  const w = new ArrowRecordWriter(file, 'sts-pair', {batchRows, metadata: {'codiemb.dataset': 'toy', [BATCH_CHECKSUMS_KEY]: 'forged', [FOOTER_CHECKSUM_KEY]: 'forged'}})
  await w.writeAll(rows(n))
  await w.finish()
}

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-recfile-'))
  try {
    await f(dir)
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

/** The byte range of record batch `index` (from the footer's block list). */
async function extent(file: string, index: number): Promise<{offset: number; length: number}> {
  const records = await RecordFile.open(file)
  try {
    return records.extents![index]!
  } finally {
    await records.close()
  }
}

test('the writer records one digest per record batch and a footer digest; callers cannot forge them; rows read back unchanged', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'sts.arrow')
    await writeSts(file, 10, 4)
    const meta = await readArrowMeta(file)
    const digests = JSON.parse(meta.metadata[BATCH_CHECKSUMS_KEY]!) as string[]
    assert.equal(digests.length, 3)
    assert.ok(digests.every((d) => /^[0-9a-f]{32}$/.test(d)))
    assert.match(meta.metadata[FOOTER_CHECKSUM_KEY]!, /^[0-9a-f]{32}$/)
    const records = await RecordFile.open(file, {kind: 'sts-pair'})
    assert.equal(records.checksums, 'batches')
    assert.equal(records.contentDigest, meta.metadata[FOOTER_CHECKSUM_KEY])
    assert.deepEqual(records.extents!.map((e) => e.offset)[0], 8, 'the first batch follows the leading magic')
    await records.close()
    assert.deepEqual(await readAllRecords(file, 'sts-pair'), rows(10).map((r) => ({...r, score: Math.fround(r.score)})))
  })
})

test('a changed byte inside a record batch is refused naming the file and the batch, before that batch yields a row', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'sts.arrow')
    await writeSts(file, 12, 4)
    const {offset, length} = await extent(file, 1)
    const bytes = readFileSync(file)
    bytes[offset + Math.floor(length / 2)]! ^= 0x01
    writeFileSync(file, bytes)
    const seen: string[] = []
    await assert.rejects(
      (async () => {
        for await (const row of readRecords(file, 'sts-pair')) seen.push(row.id)
      })(),
      (e: Error) => e.name === 'RecordFileError' && e.message.startsWith(`${file}: record batch 1 of 3`) && /does not match the checksum/.test(e.message),
    )
    assert.deepEqual(seen, ['s0', 's1', 's2', 's3'], 'only the rows of the intact batch before it')
  })
})

test('an empty, a truncated and a too-short file each get an error naming the file, never a TypeError', async () => {
  await withDir(async (dir) => {
    const empty = join(dir, 'empty.arrow')
    writeFileSync(empty, '')
    for (const read of [() => readArrowMeta(empty), () => readAllRecords(empty), () => RecordFile.open(empty)])
      await assert.rejects(read(), {name: 'RecordFileError', message: `${empty}: the file is empty (0 bytes); expected an Arrow IPC file written by \`codiemb prepare\``})
    const cut = join(dir, 'cut.arrow')
    await writeSts(cut, 20, 8)
    const whole = readFileSync(cut)
    // Cut short anywhere (every 13th length): an error naming the file, never apache-arrow's TypeError.
    for (let size = 1; size < whole.length; size += 13) {
      writeFileSync(cut, whole.subarray(0, size))
      await assert.rejects(readAllRecords(cut), (e: Error) => e.name === 'RecordFileError' && e.message.startsWith(`${cut}: `) && !/Cannot read properties/.test(e.message), `cut at ${size}`)
    }
    truncateSync(cut, Math.floor(whole.length / 2))
    await assert.rejects(readAllRecords(cut), {name: 'RecordFileError', message: `${cut}: truncated Arrow IPC file (${Math.floor(whole.length / 2)} bytes): it starts like one but does not end with its footer; re-run \`codiemb prepare\` or restore the file`})
    const tiny = join(dir, 'tiny.arrow')
    writeFileSync(tiny, 'ARROW1')
    await assert.rejects(readArrowMeta(tiny), (e: Error) => e.name === 'RecordFileError' && e.message.startsWith(`${tiny}: `))
  })
})

test('a damaged footer is an error naming the file: an inflated vector length does not make the reader run out of memory', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'sts.arrow')
    await writeSts(file, 6, 3)
    const original = readFileSync(file)
    const expected = JSON.stringify(await readAllRecords(file, 'sts-pair'))
    const footerLength = original.readInt32LE(original.length - 10)
    const footerStart = original.length - 10 - footerLength
    // Every 4-byte word of the footer raised by 2^28 in turn: vector lengths, offsets, vtable entries.
    let refused = 0
    for (let at = footerStart; at + 4 <= original.length - 10; at += 4) {
      const bytes = Buffer.from(original)
      bytes[at + 3]! ^= 0x10
      writeFileSync(file, bytes)
      try {
        assert.equal(JSON.stringify(await readAllRecords(file, 'sts-pair')), expected, `a changed footer word at ${at} read as other rows`)
      } catch (error) {
        if ((error as Error).name === 'AssertionError') throw error
        assert.equal((error as Error).name, 'RecordFileError', `word at ${at}: ${(error as Error).stack}`)
        assert.ok((error as Error).message.startsWith(`${file}: `))
        refused++
      }
    }
    assert.ok(refused > footerLength / 8, `most footer words matter (${refused} of ${footerLength / 4} refused)`)
    const badLength = Buffer.from(original)
    badLength.writeInt32LE(footerLength + (1 << 20), original.length - 10)
    writeFileSync(file, badLength)
    await assert.rejects(readArrowMeta(file), {name: 'RecordFileError', message: new RegExp(`damaged Arrow footer: its recorded length ${footerLength + (1 << 20)} does not fit`)})
  })
})

test('any single flipped byte (seeded sample) is refused or changes nothing: never other rows', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'sts.arrow')
    await writeSts(file, 9, 3)
    const original = readFileSync(file)
    const expected = JSON.stringify(await readAllRecords(file, 'sts-pair'))
    const rng = new Rng(1414)
    let refused = 0
    for (let k = 0; k < 300; k++) {
      const at = Math.floor(rng.next() * original.length)
      const bytes = Buffer.from(original)
      bytes[at]! ^= 1 << Math.floor(rng.next() * 8)
      writeFileSync(file, bytes)
      try {
        assert.equal(JSON.stringify(await readAllRecords(file, 'sts-pair')), expected, `a flip at byte ${at} read as other rows`)
      } catch (error) {
        if ((error as Error).name === 'AssertionError') throw error
        assert.equal((error as Error).name, 'RecordFileError', `byte ${at}: ${(error as Error).stack}`)
        refused++
      }
    }
    assert.ok(refused > 250, `${refused} of 300 flips refused (the rest hit padding or unused bytes)`)
  })
})

test('a file without checksums (earlier codiemb, other tools) opens with checksums "none" and reads', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'old.arrow')
    writeWithoutChecksums(file, 'sts-pair', rows(5), {'codiemb.dataset': 'old'}, 2)
    const records = await RecordFile.open(file, {kind: 'sts-pair'})
    assert.equal(records.checksums, 'none')
    assert.equal(records.contentDigest, undefined)
    assert.equal(records.batchCount, 3)
    await records.close()
    assert.equal((await readAllRecords(file, 'sts-pair')).length, 5)
  })
})

test('a footer whose row count disagrees with its batches is refused once the batches are read', async () => {
  await withDir(async (dir) => {
    const file = join(dir, 'old.arrow')
    writeWithoutChecksums(file, 'sts-pair', rows(5), {'codiemb.rows': '7'}, 2)
    await assert.rejects(readAllRecords(file), {name: 'RecordFileError', message: `${file}: the footer records 7 rows (codiemb.rows), its record batches hold 5; the file is damaged`})
  })
})
