/**
 * checkArrowFraming (src/io/arrow-framing.ts): valid Arrow files (stream and file format, codiemb's
 * own) pass; damaged ones fail with the message or footer at fault; and after the check apache-arrow
 * never hangs or runs out of memory on a seeded corruption (flipped, inserted or cut bytes).
 */
import assert from 'node:assert/strict'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {open} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, describe, it} from 'node:test'
import {RecordBatchReader, tableFromArrays, tableToIPC} from 'apache-arrow'
import {Rng} from '../../src/core/rng.js'
import {checkArrowFraming} from '../../src/io/arrow-framing.js'
import {ArrowRecordWriter, readAllRecords} from '../../src/io/arrow-records.js'

const dir = mkdtempSync(join(tmpdir(), 'codiemb-framing-'))
after(() => rmSync(dir, {recursive: true, force: true}))

async function check(bytes: Uint8Array): Promise<void> {
  const file = join(dir, 'f.arrow')
  writeFileSync(file, bytes)
  const handle = await open(file)
  try {
    await checkArrowFraming(handle, bytes.length)
  } finally {
    await handle.close()
  }
}

const table = () => tableFromArrays({a: ['你好', 'b', 'c'], n: Int32Array.from([1, 2, 3]), f: Float64Array.from([0.5, 1, 2])})

describe('checkArrowFraming', () => {
  it('passes valid files: stream and file format, several record batches, codiemb record files', async () => {
    await check(tableToIPC(table(), 'stream'))
    await check(tableToIPC(table(), 'file'))
    const file = join(dir, 'records.arrow')
    const w = new ArrowRecordWriter(file, 'sts-pair', {batchRows: 2})
    for (let i = 0; i < 5; i++) w.write({id: String(i), text1: 'a', text2: 'b', score: 0.5, raw_score: 1, instruction: ''})
    await w.finish()
    await check(readFileSync(file))
    assert.equal((await readAllRecords(file, 'sts-pair')).length, 5)
  })

  it('names what is wrong: a negative metadata length, a cut body, a missing footer', async () => {
    const stream = Buffer.from(tableToIPC(table(), 'stream'))
    const negative = Buffer.from(stream)
    const second = 8 + negative.readInt32LE(4) // the second message, after the schema
    negative.writeInt32LE(-2, second + 4)
    await assert.rejects(check(negative), /^Error: message 2 \(at byte \d+\): a metadata length of -2 in a file of \d+ bytes \(the file is damaged or truncated\)$/)
    await assert.rejects(check(stream.subarray(0, stream.length - 20)), /message \d+ .*a body of \d+ bytes where \d+ remain/)
    const file = tableToIPC(table(), 'file')
    await assert.rejects(check(file.subarray(0, file.length - 3)), /footer: the closing ARROW1 magic is missing/)
  })

  it('after the check, apache-arrow ends (rows or an error) on 400 seeded corruptions: no hang, no memory blow-up', async () => {
    const rng = new Rng(20_140_011)
    let errors = 0
    for (let k = 0; k < 400; k++) {
      const good = tableToIPC(table(), k % 2 ? 'file' : 'stream')
      let bytes: Uint8Array
      if (k % 3 === 0) {
        bytes = Uint8Array.from(good)
        for (let n = 1 + rng.int(3); n > 0; n--) bytes[rng.int(bytes.length)] = rng.int(256)
      } else if (k % 3 === 1) {
        const at = rng.int(good.length + 1)
        bytes = Uint8Array.from([...good.subarray(0, at), rng.int(256), ...good.subarray(at)])
      } else bytes = good.subarray(0, rng.int(good.length))
      const file = join(dir, 'fuzz.arrow')
      writeFileSync(file, bytes)
      const handle = await open(file)
      const read = (async () => {
        try {
          await checkArrowFraming(handle, bytes.length)
          const reader = await RecordBatchReader.from(handle)
          await reader.open()
          for await (const batch of reader) for (let c = 0; c < batch.numCols; c++) for (let r = 0; r < batch.numRows; r++) batch.getChildAt(c)?.get(r)
          return 'read'
        } catch {
          errors++
          return 'error'
        }
      })()
      let timer: NodeJS.Timeout | undefined
      const outcome = await Promise.race([read, new Promise((resolve) => (timer = setTimeout(() => resolve('hang'), 5000)))])
      clearTimeout(timer)
      await handle.close()
      assert.notEqual(outcome, 'hang', `corruption #${k} made apache-arrow hang`)
    }
    assert.ok(errors > 300, `most corruptions are caught (${errors} of 400)`)
  })
})
