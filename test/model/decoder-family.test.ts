import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import {loadEncoder} from '../../src/model/encoder.js'
import {buildBatch, type TokenBatch} from '../../src/model/tokenizer/tokenizer.js'
import {spawnSync} from 'node:child_process'
import {shared, useTestBackend, BUILTINS, REPO_ROOT, TEST_BACKEND} from '../helpers/env.js'
import {DECODER_FIXTURES, loadableFixture, readExpected, textFor} from '../helpers/decoder-fixtures.js'

/**
 * Largest difference allowed between normalised embeddings computed with bf16 matrix products (and,
 * for a BF16 checkpoint, bf16 storage) and the float32 fixture: bfloat16 keeps 8 significant bits
 * (relative rounding 2^-9 ≈ 2e-3 per product); measured 1.6e-3 (qwen3-tiny) and 1.5e-3 (minicpm-tiny).
 */
const BF16_EMBEDDING_TOLERANCE = 5e-3

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

test('torch --precision bf16: decoder embeddings within bf16 tolerance of the float32 fixture, RMSNorm in float32, LoRA trains', async (t) => {
  if (TEST_BACKEND !== 'torch') return t.skip('torch backend only (run with --backend torch)')
  const fixtures = Object.fromEntries(DECODER_FIXTURES.map((name) => [name, shared(t, 'fixtures', 'models', name)]))
  if (Object.values(fixtures).some((f) => !f)) return
  const child = spawnSync(process.execPath, [join(REPO_ROOT, 'dist', 'test', 'helpers', 'bf16-decoder-child.js'), JSON.stringify({fixtures})], {encoding: 'utf8'})
  assert.equal(child.status, 0, child.stderr)
  const out = JSON.parse(child.stdout.trim().split('\n').pop()!)
  // qwen3-tiny is an F32 checkpoint (float32 storage, bf16 products); minicpm-tiny is BF16 (kept bfloat16).
  assert.deepEqual(out['qwen3-tiny'].storage, ['float32'])
  assert.deepEqual(out['minicpm-tiny'].storage, ['bfloat16'])
  for (const name of DECODER_FIXTURES) {
    assert.ok(out[name].embeddingDiff <= BF16_EMBEDDING_TOLERANCE, `${name}: bf16 embeddings differ from the float32 fixture by ${out[name].embeddingDiff}`)
    assert.ok(out[name].embeddingDiff > 0, `${name}: bf16 products should round something`)
  }
  assert.ok(out.rmsNormRelErr <= 1e-6, `RMSNorm is not float32 under bf16: relative error ${out.rmsNormRelErr}`)
  assert.deepEqual(out.lora.baseStorage, ['bfloat16'])
  assert.deepEqual(out.lora.adapterStorage, ['float32'])
  assert.equal(out.lora.baseUnchanged, true)
  assert.ok(out.lora.losses.every(Number.isFinite) && out.lora.losses.at(-1) < out.lora.losses[0], `LoRA loss in bf16: ${out.lora.losses.join(', ')}`)
  t.diagnostic(`bf16 vs float32 fixture embeddings: qwen3 ${out['qwen3-tiny'].embeddingDiff.toExponential(2)}, minicpm ${out['minicpm-tiny'].embeddingDiff.toExponential(2)}; RMSNorm relative error ${out.rmsNormRelErr.toExponential(2)}; LoRA loss ${out.lora.losses[0].toFixed(4)} -> ${out.lora.losses.at(-1).toFixed(4)}`)
})
