import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import {loadEncoder} from '../../src/model/encoder.js'
import {buildBatch, type TokenBatch} from '../../src/model/tokenizer/tokenizer.js'
import {shared, useTestBackend, BUILTINS} from '../helpers/env.js'
import {DECODER_FIXTURES, loadableFixture, readExpected, textFor} from '../helpers/decoder-fixtures.js'

/** A batch with exactly the fixture's ids and mask (both padding sides), built without a tokenizer. */
function fixtureBatch(ids: number[][], mask: number[][]): TokenBatch {
  const rows = ids.map((row, b) => {
    const kept = row.filter((_, t) => mask[b]![t])
    return {ids: kept, typeIds: kept.map(() => 0), offsets: kept.map(() => [0, 0]), special: kept.map(() => 0)}
  })
  const left = mask.some((m) => m[0] === 0 && m[m.length - 1] === 1)
  const pad = ids.flatMap((row, b) => row.filter((_, t) => !mask[b]![t]))[0] ?? 0
  const batch = buildBatch(rows, pad, undefined, left ? 'left' : 'right')
  assert.deepEqual([...batch.inputIds], ids.flat(), 'the rebuilt batch has the fixture ids')
  assert.deepEqual([...batch.attentionMask], mask.flat())
  return batch
}

for (const name of DECODER_FIXTURES) {
  for (const side of ['right', 'left'] as const) {
    test(`${name}, ${side} padding: hidden states (1e-4) and embeddings (1e-5) match the fixture`, async (t) => {
      const fixture = shared(t, 'fixtures', 'models', name)
      if (!fixture) return
      await useTestBackend()
      const expected = readExpected(fixture)
      const enc = await loadEncoder(loadableFixture(fixture, side), {registry: BUILTINS, trainable: false})
      try {
        const want = expected.batches[side]
        const batch = fixtureBatch(want.input_ids, want.attention_mask)
        const before = tf.memory().numTensors
        const {hidden, pooled} = tf.tidy(() => {
          const out = enc.forward(batch)
          const p = enc.pool(out.lastHiddenState, batch, {pooling: expected.pooling === 'last' ? 'last-token' : 'weighted-mean', normalize: true})
          return {hidden: out.hiddenStates.map((h) => h.arraySync()), pooled: p.arraySync()}
        })
        assert.equal(tf.memory().numTensors, before, 'no tensor leaked')
        assert.equal(hidden.length, want.hidden_states.length, 'L + 1 hidden states')
        let worst = 0
        let compared = 0
        want.hidden_states.forEach((layer, l) =>
          layer.forEach((row, b) =>
            row.forEach((vec, p) => {
              if (vec === null) return
              vec.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - hidden[l]![b]![p]![i]!))))
              compared++
            }),
          ),
        )
        assert.ok(compared > 0)
        assert.ok(worst <= 1e-4, `hidden states differ by ${worst}`)
        const embDiff = Math.max(...want.embeddings.flatMap((row, b) => row.map((x, i) => Math.abs(x - pooled[b]![i]!))))
        assert.ok(embDiff <= 1e-5, `embeddings differ by ${embDiff}`)
        t.diagnostic(`max abs difference: hidden states ${worst.toExponential(2)} over ${compared} positions, embeddings ${embDiff.toExponential(2)}`)

        // Through the tokenizer and encode(): the texts give the fixture ids, batched longest-first.
        assert.equal(enc.pooling, 'mean')
        enc.pooling = expected.pooling === 'last' ? 'last-token' : 'weighted-mean'
        const texts = expected.sequences.map((ids) => textFor(expected, ids))
        const tokenized = await enc.tokenize(texts)
        const got = tokenized.inputIds.length / tokenized.batchSize
        assert.equal(got, Math.max(...expected.sequences.map((s) => s.length)))
        const vectors = await enc.encode(texts, {normalize: true, batchSize: 3})
        const encDiff = Math.max(...expected.embeddings.flatMap((row, b) => row.map((x, i) => Math.abs(x - vectors[b]![i]!))))
        assert.ok(encDiff <= 1e-5, `encode() embeddings differ by ${encDiff}`)
      } finally {
        enc.dispose()
      }
    })
  }
}

test('is_causal: config.json decides, a load may override it (saved with the model); BERT refuses causal attention', async (t) => {
  const fixture = shared(t, 'fixtures', 'models', 'minicpm-tiny')
  const bert = shared(t, 'fixtures', 'models', 'bert-tiny')
  if (!fixture || !bert) return
  await useTestBackend()
  const expected = readExpected(fixture)
  const dir = loadableFixture(fixture, 'right')
  const texts = expected.sequences.map((ids) => textFor(expected, ids))
  const bidirectional = await loadEncoder(dir, {registry: BUILTINS, trainable: false})
  const causal = await loadEncoder(dir, {registry: BUILTINS, trainable: false, configOverrides: {is_causal: true}})
  try {
    assert.equal(causal.config.is_causal, true)
    const [a, b] = [await bidirectional.encode(texts, {pooling: 'weighted-mean'}), await causal.encode(texts, {pooling: 'weighted-mean'})]
    // The one-token text attends only to itself either way; every longer one changes.
    const moved = a.map((v, i) => Math.max(...[...v].map((x, k) => Math.abs(x - b[i]![k]!))))
    assert.ok(moved.filter((m) => m > 1e-3).length === 3 && moved[2]! < 1e-6, `changes per text: ${moved}`)
    const saved = join(dir, '..', 'causal')
    await causal.save(saved)
    assert.equal(JSON.parse(readFileSync(join(saved, 'config.json'), 'utf8')).is_causal, true)
  } finally {
    bidirectional.dispose()
    causal.dispose()
  }
  await assert.rejects(loadEncoder(join(bert, 'model'), {registry: BUILTINS, configOverrides: {is_causal: true}}), /is_causal: true is not supported \(BERT-family/)
})
