/**
 * Run as a child process by test/model/bf16-weights.test.ts (argv[2]: JSON {tokenizerDir, dir}): a
 * backend's precision is fixed when it is registered, so the torch backend under --precision bf16
 * runs here. Saves a small random BERT as a BF16 checkpoint and a float32 copy of the same values,
 * loads both, compares their storage and outputs, trains the bf16 one a few steps with AdamW and
 * saves it; prints what it saw as one JSON line for the parent to check.
 */
import {cpSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import {builtinRegistry} from '../../src/builtins.js'
import {selectBackend} from '../../src/tensor/backend.js'
import {tensorStorage} from '../../src/tensor/storage.js'
import {initRandomEncoder, loadEncoder, type Encoder} from '../../src/model/encoder.js'
import {openSafetensors} from '../../src/io/safetensors.js'
import {writeSafetensors} from '../../src/io/safetensors-stream.js'
import {AdamW} from '../../src/train/optimizer.js'

const {tokenizerDir, dir} = JSON.parse(process.argv[2]!) as {tokenizerDir: string; dir: string}
const registry = await builtinRegistry()
await selectBackend(registry, 'torch', {precision: 'bf16'})

const random = await initRandomEncoder({registry, arch: 'bert', tokenizerDir, layers: 2, hidden: 64, heads: 2, intermediate: 128, maxPositions: 64, seed: 3})
const bf16Dir = join(dir, 'bf16')
await random.save(bf16Dir, {dtype: 'BF16'})
random.dispose()

// The same values in float32: every BF16 tensor read (exactly upcast) and written as F32.
const f32Dir = join(dir, 'f32')
cpSync(bf16Dir, f32Dir, {recursive: true})
const src = await openSafetensors(join(bf16Dir, 'model.safetensors'))
const copies = []
for (const info of src.tensors()) copies.push({name: info.name, shape: info.shape, dtype: 'F32' as const, data: (await src.read(info.name)).data})
await src.close()
await writeSafetensors(join(f32Dir, 'model.safetensors'), copies, {format: 'pt'})

function storageOf(enc: Encoder): {dtypes: string[]; bytes: number} {
  const dtypes = new Set<string>()
  let bytes = 0
  for (const v of enc.variables.values()) {
    const s = tensorStorage(v)
    dtypes.add(s.dtype)
    bytes += s.bytes
  }
  return {dtypes: [...dtypes].sort(), bytes}
}

const texts = ['what is a transformer', 'a transformer is a neural network built from attention layers', 'how do cats sleep', 'cats sleep about fifteen hours a day']
const asF32 = await loadEncoder(f32Dir, {registry})
const f32Storage = storageOf(asF32)
const f32Out = (await asF32.encode(texts)).flatMap((v) => [...v])
asF32.dispose()

const enc = await loadEncoder(bf16Dir, {registry})
const loaded = storageOf(enc)
const bf16Out = (await enc.encode(texts)).flatMap((v) => [...v])
let maxOutDiff = 0
for (let i = 0; i < f32Out.length; i++) maxOutDiff = Math.max(maxOutDiff, Math.abs(f32Out[i]! - bf16Out[i]!))

// A few AdamW steps of in-batch InfoNCE (queries 0 and 2 against passages 1 and 3), dropout off so the loss is a function of the weights.
const batch = await enc.tokenize(texts)
const optimizer = new AdamW(enc.variables, {learningRate: 2e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01})
const losses: number[] = []
const tensorCounts: number[] = []
for (let step = 0; step < 6; step++) {
  const {value, grads} = tf.variableGrads(() => {
    const e = enc.pool(enc.forward(batch).lastHiddenState, batch, {normalize: true})
    const q = tf.gather(e, [0, 2])
    const p = tf.gather(e, [1, 3])
    const logits = tf.mul(tf.matMul(q, p, false, true), 20)
    return tf.losses.softmaxCrossEntropy(tf.oneHot([0, 1], 2), logits) as tf.Scalar
  }, [...enc.variables.values()])
  losses.push(value.dataSync()[0]!)
  value.dispose()
  const byName = new Map<string, tf.Tensor>()
  for (const [name, v] of enc.variables) byName.set(name, grads[v.name]!)
  optimizer.apply(byName, 2e-3)
  for (const g of Object.values(grads)) g.dispose()
  tensorCounts.push(tf.memory().numTensors)
}
const trained = storageOf(enc)
const moments = new Set([...optimizer.m.values(), ...optimizer.v.values()].map((t) => tensorStorage(t).dtype))
const expected = new Map([...enc.variables].map(([name, v]) => [name, v.dataSync() as Float32Array]))
const outDir = join(dir, 'trained')
await enc.save(outDir)

const saved = await openSafetensors(join(outDir, 'model.safetensors'))
const savedDtypes = [...new Set(saved.tensors().map((t) => t.dtype))].sort()
// Byte layout: the header's offsets pack 2-byte values back to back, and each value is the trained
// float32 master rounded to the nearest bfloat16 (ties to even), as torch's .to(torch.bfloat16) does.
const bytes = readFileSync(join(outDir, 'model.safetensors'))
const headerLen = Number(bytes.readBigUInt64LE(0))
const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, {dtype: string; shape: number[]; data_offsets: [number, number]}>
let layoutOk = true
let roundingErrors = 0
const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)
for (const [name, e] of Object.entries(header)) {
  if (name === '__metadata__') continue
  const count = e.shape.reduce((a, b) => a * b, 1)
  if (e.data_offsets[1] - e.data_offsets[0] !== count * 2) layoutOk = false
  const want = expected.get(name)!
  for (let i = 0; i < count; i++) {
    f32[0] = want[i]!
    const w = u32[0]!
    const rounded = ((w + 0x7fff + ((w >>> 16) & 1)) >>> 16) & 0xffff
    if (bytes.readUInt16LE(8 + headerLen + e.data_offsets[0] + 2 * i) !== rounded) roundingErrors++
  }
}
await saved.close()
const config = JSON.parse(readFileSync(join(outDir, 'config.json'), 'utf8')) as {dtype?: string}
enc.dispose()
optimizer.dispose()
console.log(JSON.stringify({f32Storage, loaded, trained, moments: [...moments], maxOutDiff, losses, tensorCounts, savedDtypes, layoutOk, roundingErrors, configDtype: config.dtype, fileBytes: bytes.length, headerLen}))
