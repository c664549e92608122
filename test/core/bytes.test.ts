import assert from 'node:assert/strict'
import {describe, it} from 'node:test'
import {formatBytes, parseBytes} from '../../src/core/bytes.js'

describe('byte sizes', () => {
  it('parses binary and decimal units, bare bytes and fractions, case-insensitively', () => {
    assert.equal(parseBytes('141GiB'), 141 * 2 ** 30)
    assert.equal(parseBytes('80 GB'), 80e9)
    assert.equal(parseBytes('512mib'), 512 * 2 ** 20)
    assert.equal(parseBytes('1.5TB'), 1.5e12)
    assert.equal(parseBytes('64G'), 64 * 2 ** 30)
    assert.equal(parseBytes('1048576'), 2 ** 20)
    assert.equal(parseBytes('3 KB'), 3000)
  })

  it('refuses what is not a size', () => {
    for (const bad of ['', 'lots', '12 parsecs', '-4GiB', '0', 'GiB', '1e9']) assert.throws(() => parseBytes(bad), /expected a (positive )?size/, bad)
  })

  it('formats in binary units with three significant digits', () => {
    assert.equal(formatBytes(512), '512 B')
    assert.equal(formatBytes(1536), '1.50 KiB')
    assert.equal(formatBytes(141 * 2 ** 30), '141 GiB')
    assert.equal(formatBytes(37.25 * 2 ** 30), '37.3 GiB')
  })
})
