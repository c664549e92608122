import assert from 'node:assert/strict'
import {test} from 'node:test'
import {Rng} from '../../src/core/rng.js'
import {RowNumbers} from '../../src/train/row-numbers.js'

test('RowNumbers maps usable rows to file rows from the rows left out, or from the rows kept when those are fewer', () => {
  const rng = new Rng(4)
  for (const [total, share] of [[0, 0], [1, 0], [1, 1], [50, 0], [50, 0.1], [50, 0.5], [50, 0.9], [50, 1], [1000, 0.03], [1000, 0.7]] as const) {
    const leftOut: number[] = []
    for (let row = 0; row < total; row++) if (rng.next() < share) leftOut.push(row)
    const expected = Array.from({length: total}, (_, r) => r).filter((r) => !leftOut.includes(r))
    const numbers = RowNumbers.without(total, leftOut)
    assert.equal(numbers.length, expected.length)
    assert.deepEqual(Array.from(numbers), expected, `${total} rows, ${leftOut.length} left out`)
    assert.deepEqual(expected.map((_, i) => numbers.at(i)), expected)
  }
  assert.deepEqual(Array.from(RowNumbers.listed(Int32Array.from([2, 5, 9]))), [2, 5, 9])
})
