/**
 * Encoding in token-length order (src/model/encoder.ts encode, src/model/tokenizer/select-rows.ts):
 * every window of texts is tokenized once, run longest first in batches of similar length (or within
 * a token budget), and the vectors come back in input order, equal to encoding each text on its own.
 */
import assert from 'node:assert/strict'
import {test} from 'node:test'
import {loadEncoder} from '../../src/model/encoder.js'
import {selectRows} from '../../src/model/tokenizer/select-rows.js'
import {BUILTINS, shared, useTestBackend} from '../helpers/env.js'

const TEXTS = [
  'short',
  'A man is playing a guitar on the stage in front of a large and very enthusiastic crowd tonight.',
  '一个女孩在给她的头发做发型。',
  'The cat sits.',
  '两只狗在草地上奔跑，它们看起来非常开心，主人在旁边看着它们。',
  'Stocks fell sharply on Monday after the central bank raised interest rates again.',
  'ok',
  'A woman is slicing an onion.',
  'x',
  '花呗怎么还款',
  'Medium length sentence about embeddings and retrieval.',
]

test('encode sorts each window by token count, keeps the budget, and returns vectors in input order', async (t) => {
  const dir = shared(t, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!dir) return
  await useTestBackend()
  const enc = await loadEncoder(dir, {registry: BUILTINS})
  try {
    const one = await Promise.all(TEXTS.map(async (x) => (await enc.encode([x]))[0]))
    const progress: {tokens?: number; padded?: number}[] = []
    const inOrder = await enc.encode(TEXTS, {batchSize: 3, sortWindow: 3, onEvent: (e) => progress.push(e)})
    const unsortedPadding = 1 - progress.at(-1)!.tokens! / progress.at(-1)!.padded!
    progress.length = 0
    const sorted = await enc.encode(TEXTS, {batchSize: 3, onEvent: (e) => progress.push(e)})
    const sortedPadding = 1 - progress.at(-1)!.tokens! / progress.at(-1)!.padded!
    assert.ok(sortedPadding < unsortedPadding, `padding ratio sorted ${sortedPadding}, in input order ${unsortedPadding}`)
    progress.length = 0
    const budget = await enc.encode(TEXTS, {maxTokensPerBatch: 40, sortWindow: 5, onEvent: (e) => progress.push(e)})
    // windows of 5: rows x longest row stays within 40 tokens unless one text alone is longer
    let before = {done: 0, padded: 0}
    for (const e of progress as {done: number; padded: number}[]) {
      const rows = e.done - before.done
      assert.ok(rows === 1 || e.padded - before.padded <= 40, `a batch of ${rows} rows computed ${e.padded - before.padded} tokens`)
      before = e
    }
    for (const [name, got] of Object.entries({inOrder, sorted, budget})) {
      assert.equal(got.length, TEXTS.length)
      got.forEach((v, i) => {
        let d = 0
        for (let j = 0; j < v.length; j++) d = Math.max(d, Math.abs(v[j] - one[i][j]))
        assert.ok(d < 1e-4, `${name}: text ${i} differs from its own encoding by ${d}`)
      })
    }
  } finally {
    enc.dispose()
  }
})

test('selectRows keeps each row and pads only to the longest selected', () => {
  const batch = {
    batchSize: 3,
    seqLen: 4,
    inputIds: Int32Array.of(1, 5, 2, 0, 1, 2, 0, 0, 1, 6, 7, 2),
    attentionMask: Int32Array.of(1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1),
    tokenTypeIds: new Int32Array(12),
    offsets: new Int32Array(24).map((_, i) => i),
    specialTokensMask: Uint8Array.of(1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 0, 1),
    lengths: [3, 2, 4],
    poolMask: Float32Array.of(1, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1),
    prefixLengths: [0, 0, 0],
  }
  const sub = selectRows(batch, [1, 0])
  assert.equal(sub.seqLen, 3)
  assert.deepEqual([...sub.inputIds], [1, 2, 0, 1, 5, 2])
  assert.deepEqual([...sub.attentionMask], [1, 1, 0, 1, 1, 1])
  assert.deepEqual([...sub.offsets], [8, 9, 10, 11, 12, 13, 0, 1, 2, 3, 4, 5])
  assert.deepEqual(sub.lengths, [2, 3])
})

test('selectRows with left padding keeps each row\'s last positions (decoder tokenizers pad on the left)', () => {
  const batch = {
    batchSize: 3,
    seqLen: 4,
    inputIds: Int32Array.of(0, 1, 5, 2, 0, 0, 1, 2, 1, 6, 7, 2),
    attentionMask: Int32Array.of(0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1),
    tokenTypeIds: new Int32Array(12),
    offsets: new Int32Array(24).map((_, i) => i),
    specialTokensMask: Uint8Array.of(0, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1),
    lengths: [3, 2, 4],
    poolMask: Float32Array.of(0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1),
    prefixLengths: [0, 0, 0],
  }
  const sub = selectRows(batch, [1, 0], 'left')
  assert.equal(sub.seqLen, 3)
  assert.deepEqual([...sub.inputIds], [0, 1, 2, 1, 5, 2])
  assert.deepEqual([...sub.attentionMask], [0, 1, 1, 1, 1, 1])
  assert.deepEqual([...sub.offsets], [10, 11, 12, 13, 14, 15, 2, 3, 4, 5, 6, 7])
  assert.deepEqual(sub.lengths, [2, 3])
})
