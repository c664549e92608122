/**
 * Run as a child process by test/model/decoder-family.test.ts (argv[2]: JSON {fixtures: {name: dir}}):
 * the torch backend under --precision bf16 (fixed when the backend registers, hence a child). For each
 * decoder fixture it loads the model (qwen3-tiny is F32: float32 storage, bf16 matmuls; minicpm-tiny
 * is BF16: bfloat16 storage), embeds the fixture's sequences and reports the largest difference from
 * the fixture's float32 embeddings; checks RMSNorm against a float64 computation (it must stay
 * float32); and runs a few LoRA training steps (AdamW on the adapters) on minicpm-tiny. Prints one
 * JSON line.
 */
import * as tf from '@tensorflow/tfjs-core'
import {builtinRegistry} from '../../src/builtins.js'
import {selectBackend} from '../../src/tensor/backend.js'
import {tensorStorage} from '../../src/tensor/storage.js'
import {loadEncoder} from '../../src/model/encoder.js'
import {rmsNorm} from '../../src/model/decoder-family.js'
import {AdamW} from '../../src/train/optimizer.js'
import {loadableFixture, readExpected, textFor} from './decoder-fixtures.js'

const {fixtures} = JSON.parse(process.argv[2]!) as {fixtures: Record<string, string>}
const registry = await builtinRegistry()
await selectBackend(registry, 'torch', {precision: 'bf16'})

const result: Record<string, unknown> = {}
for (const [name, fixture] of Object.entries(fixtures)) {
  const expected = readExpected(fixture)
  const enc = await loadEncoder(loadableFixture(fixture, 'right'), {registry, trainable: false})
  enc.pooling = expected.pooling === 'last' ? 'last-token' : 'weighted-mean'
  const vectors = await enc.encode(expected.sequences.map((ids) => textFor(expected, ids)), {normalize: true, batchSize: 3})
  const diff = Math.max(...expected.embeddings.flatMap((row, b) => row.map((x, i) => Math.abs(x - vectors[b]![i]!))))
  const storage = [...new Set([...enc.variables.values()].map((v) => tensorStorage(v).dtype))].sort()
  result[name] = {embeddingDiff: diff, storage}
  enc.dispose()
}

// RMSNorm in float32: against float64 on values whose bf16 rounding would show (errors ~4e-3).
const rows = 7
const n = 96
const xs = Float32Array.from({length: rows * n}, (_, i) => Math.sin(i * 1.7) * 3 + 0.01 * i)
const ws = Float32Array.from({length: n}, (_, i) => 1 + 0.37 * Math.cos(i))
const got = tf.tidy(() => rmsNorm(tf.tensor2d(xs, [rows, n]), tf.tensor1d(ws), 1e-6).dataSync() as Float32Array)
let normErr = 0
for (let r = 0; r < rows; r++) {
  let ms = 0
  for (let i = 0; i < n; i++) ms += xs[r * n + i]! ** 2
  const inv = 1 / Math.sqrt(ms / n + 1e-6)
  for (let i = 0; i < n; i++) normErr = Math.max(normErr, Math.abs(xs[r * n + i]! * inv * ws[i]! - got[r * n + i]!) / Math.max(1, Math.abs(got[r * n + i]!)))
}
result.rmsNormRelErr = normErr

// LoRA in bf16: the frozen base stays bfloat16 and unchanged, the adapters train in float32.
const fixture = fixtures['minicpm-tiny']!
const expected = readExpected(fixture)
const enc = await loadEncoder(loadableFixture(fixture, 'right'), {registry})
enc.pooling = 'weighted-mean'
enc.addLora({rank: 4, alpha: 8, dropout: 0.1, targetModules: 'all-linear'}, 2)
const texts = expected.sequences.slice(0, 4).map((ids) => textFor(expected, ids))
const batch = await enc.tokenize(texts)
const baseBefore = new Map([...enc.frozen!].map(([k, v]) => [k, Array.from(v.dataSync() as Float32Array)]))
const optimizer = new AdamW(enc.variables, {learningRate: 5e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0})
const losses: number[] = []
for (let step = 0; step < 8; step++) {
  const {value, grads} = tf.variableGrads(() => {
    const e = enc.pool(enc.forward(batch, {training: true, seed: 100 + step}).lastHiddenState, batch, {normalize: true})
    const logits = tf.mul(tf.matMul(tf.gather(e, [0, 2]), tf.gather(e, [1, 3]), false, true), 20)
    return tf.losses.softmaxCrossEntropy(tf.oneHot([0, 1], 2), logits) as tf.Scalar
  }, [...enc.variables.values()])
  losses.push(value.dataSync()[0]!)
  value.dispose()
  optimizer.apply(new Map([...enc.variables].map(([name, v]) => [name, grads[v.name]!])), 5e-3)
  for (const g of Object.values(grads)) g.dispose()
}
const baseUnchanged = [...enc.frozen!].every(([k, v]) => (v.dataSync() as Float32Array).every((x, i) => x === baseBefore.get(k)![i]))
result.lora = {
  losses,
  baseStorage: [...new Set([...enc.frozen!.values()].map((v) => tensorStorage(v).dtype))].sort(),
  adapterStorage: [...new Set([...enc.variables.values()].map((v) => tensorStorage(v).dtype))].sort(),
  baseUnchanged,
}
optimizer.dispose()
enc.dispose()
console.log(JSON.stringify(result))
