/**
 * Run as a child process by test/tensor/bf16-activations.test.ts (argv[2]: JSON {tokenizerDir}),
 * since a backend's precision is fixed when it is registered: the torch backend under --precision
 * bf16, with bf16 activations on or off as CODIEMB_TORCH_BF16_ACTIVATIONS says. Builds a small
 * random BERT, differentiates an in-batch InfoNCE over padded texts (dropout off), and reports the
 * loss, the gradients (all but the word embeddings), their storage dtypes, the bytes the step keeps
 * for backward by storage dtype (TorchBackend.liveBytes at the loss, less the bytes before the step),
 * and the tensor counts over three steps. Then, with dropout on, the gradients of the same step with
 * and without activation checkpointing (the recomputed forward must redraw the same masks).
 */
import * as tf from '@tensorflow/tfjs-core'
import {builtinRegistry} from '../../src/builtins.js'
import {selectBackend} from '../../src/tensor/backend.js'
import {tensorStorage} from '../../src/tensor/storage.js'
import {initRandomEncoder} from '../../src/model/encoder.js'
import type {TorchBackend} from '../../src/tensor/torch/backend.js'

const {tokenizerDir} = JSON.parse(process.argv[2]!) as {tokenizerDir: string}
const registry = await builtinRegistry()
await selectBackend(registry, 'torch', {precision: 'bf16'})
const backend = tf.backend() as unknown as TorchBackend

const enc = await initRandomEncoder({registry, arch: 'bert', tokenizerDir, layers: 2, hidden: 64, heads: 4, intermediate: 256, maxPositions: 128, seed: 5})
const texts = [
  'what is a transformer',
  'a transformer is a neural network built from attention layers that mix every token with every other token',
  'how do cats sleep',
  'cats sleep about fifteen hours a day, mostly in short naps spread over the day and the night',
  'where is the eiffel tower',
  'the eiffel tower stands on the champ de mars in paris, near the seine',
]
const batch = await enc.tokenize(texts)
const trainable = [...enc.variables.entries()].filter(([name]) => !name.includes('word_embeddings'))

const stored = (): Record<string, number> => backend.liveBytes()
const minus = (a: Record<string, number>, b: Record<string, number>): Record<string, number> =>
  Object.fromEntries([...new Set([...Object.keys(a), ...Object.keys(b)])].map((k) => [k, (a[k] ?? 0) - (b[k] ?? 0)]))

function step(options: {training?: boolean; seed?: number; checkpointLayers?: boolean}) {
  const before = stored()
  let kept: Record<string, number> = {}
  const {value, grads} = tf.variableGrads(() => {
    const e = enc.pool(enc.forward(batch, options).lastHiddenState, batch, {normalize: true})
    const q = tf.gather(e, [0, 2, 4])
    const p = tf.gather(e, [1, 3, 5])
    const logits = tf.mul(tf.matMul(q, p, false, true), 20)
    const loss = tf.losses.softmaxCrossEntropy(tf.oneHot([0, 1, 2], 3), logits) as tf.Scalar
    // What the tape holds for backward now (and the few tensors of the loss itself).
    kept = minus(stored(), before)
    return loss
  }, trainable.map(([, v]) => v))
  const loss = value.dataSync()[0]!
  const out = {
    loss,
    kept,
    gradDtypes: [...new Set(Object.values(grads).map((g) => tensorStorage(g).dtype))].sort(),
    grads: Object.fromEntries(trainable.map(([name, v]) => [name, Array.from(grads[v.name]!.dataSync())])),
  }
  value.dispose()
  for (const g of Object.values(grads)) g.dispose()
  return out
}

const first = step({})
const tensorCounts: number[] = []
const bf16After: number[] = []
for (let i = 0; i < 3; i++) {
  step({})
  tensorCounts.push(tf.memory().numTensors)
  bf16After.push(stored().bfloat16 ?? 0)
}
const dropout = step({training: true, seed: 11})
const checkpointed = step({training: true, seed: 11, checkpointLayers: true})
let checkpointMaxDiff = 0
for (const [name, g] of Object.entries(dropout.grads)) {
  const c = checkpointed.grads[name]!
  for (let i = 0; i < g.length; i++) checkpointMaxDiff = Math.max(checkpointMaxDiff, Math.abs(g[i]! - c[i]!))
}
enc.dispose()
console.log(JSON.stringify({
  bf16Activations: backend.bf16Activations,
  loss: first.loss,
  kept: first.kept,
  gradDtypes: first.gradDtypes,
  grads: first.grads,
  tensorCounts,
  bf16After,
  dropoutLoss: dropout.loss,
  checkpointedLoss: checkpointed.loss,
  checkpointMaxDiff,
}))
