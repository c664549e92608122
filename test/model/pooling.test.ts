import {test} from 'node:test'
import assert from 'node:assert/strict'
import * as tf from '@tensorflow/tfjs-core'
import {poolHidden} from '../../src/model/pooling.js'
import {buildBatch} from '../../src/model/tokenizer/tokenizer.js'
import {useTestBackend} from '../helpers/env.js'

/** Rows of token ids with offsets: token t covers characters [2t, 2t + 1); the first token is special when `bos`. */
function rows(lengths: number[], bos = false) {
  return lengths.map((n) => ({
    ids: Array.from({length: n}, (_, t) => 10 + t),
    typeIds: new Array(n).fill(0),
    offsets: Array.from({length: n}, (_, t) => (bos && t === 0 ? [0, 0] : [2 * t, 2 * t + 1])),
    special: Array.from({length: n}, (_, t) => (bos && t === 0 ? 1 : 0)),
  }))
}

test('left padding: tokens at the end of the row, the prompt mask and every pooling mode read the attention mask', async () => {
  await useTestBackend()
  const right = buildBatch(rows([4, 2], true), 0, [3, 0], 'right')
  const left = buildBatch(rows([4, 2], true), 0, [3, 0], 'left')
  assert.deepEqual([...left.inputIds], [10, 11, 12, 13, 0, 0, 10, 11])
  assert.deepEqual([...left.attentionMask], [1, 1, 1, 1, 0, 0, 1, 1])
  // Row 0's prefix (3 characters) covers <s> and the token ending at 1 … 3; the same tokens on both sides.
  assert.deepEqual([...right.poolMask], [0, 0, 1, 1, 1, 1, 0, 0])
  assert.deepEqual([...left.poolMask], [0, 0, 1, 1, 0, 0, 1, 1])
  assert.deepEqual(left.lengths, [4, 2])
  // Hidden state h[b, t] = position-in-row of the token (1-based), so each mode's result is exact.
  const values = (b: typeof left) => Array.from({length: 2 * 4}, (_, i) => {
    const row = Math.floor(i / 4)
    const before = [...b.attentionMask.subarray(row * 4, i + 1)].reduce((a, c) => a + c, 0)
    return b.attentionMask[i] ? before : -100
  })
  for (const [side, batch] of [['right', right], ['left', left]] as const) {
    const hidden = tf.tensor3d(values(batch), [2, 4, 1])
    const pooled = (mode: 'last-token' | 'weighted-mean' | 'mean') => [...(poolHidden(hidden, batch, mode, false).dataSync() as Float32Array)]
    assert.deepEqual(pooled('last-token'), [4, 2], `${side}: last attended token`)
    // weighted-mean: weights = position among attended tokens, on pooled tokens: row 0 (3·3 + 4·4) / 7, row 1 (1 + 4) / 3.
    const w = pooled('weighted-mean')
    assert.ok(Math.abs(w[0]! - 25 / 7) < 1e-6 && Math.abs(w[1]! - 5 / 3) < 1e-6, `${side}: weighted ${w}`)
    assert.deepEqual(pooled('mean'), [3.5, 1.5], `${side}: mean`)
    hidden.dispose()
  }
})
