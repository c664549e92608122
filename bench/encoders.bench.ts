/**
 * Encoder throughput on the cpu backend: `codiemb embed`'s path (tokenize, forward, pool, normalise)
 * over real STS-B sentences, in texts/s and tokens/s, for
 *   - bert-tiny (the 2-layer, hidden-64 fixture), and
 *   - a random BERT-mini-sized model (4 layers, hidden 256, 4 heads, FFN 1024) with the Chinese BERT
 *     vocabulary, or with BENCH_LARGE=1 a MiniLM-L6-sized one (6 layers, hidden 384, 12 heads, FFN
 *     1536) — the size of a small real embedding model (minutes on the pure-JS backend).
 * Also the forward + backward time of one training-style step (batch 8) on the random model.
 * Needs ../shared (skips with a message when absent). BENCH_TEXTS sets the number of texts (default 64).
 */
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import * as tf from '@tensorflow/tfjs-core'
import {builtinRegistry} from '../src/builtins.js'
const BUILTINS = await builtinRegistry()
import {selectBackend} from '../src/tensor/backend.js'
import {initRandomEncoder, loadEncoder, type Encoder} from '../src/model/encoder.js'

const root = join(fileURLToPath(import.meta.url), '..', '..', '..')
const sharedDir = process.env.CODIEMB_SHARED ?? join(root, '..', 'shared')
if (!existsSync(join(sharedDir, 'README.md'))) {
  console.log(`encoders bench skipped: ../shared is absent (set CODIEMB_SHARED)`)
  process.exit(0)
}
const count = Number(process.env.BENCH_TEXTS ?? 64)
const large = process.env.BENCH_LARGE === '1'
const texts = readFileSync(join(sharedDir, 'data', 'stsb', 'sts-dev.csv'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => line.split('\t')[5]!)
  .slice(0, count)

await selectBackend(await builtinRegistry(), 'cpu')

async function measure(label: string, enc: Encoder, batchSize: number): Promise<void> {
  await enc.encode(texts.slice(0, batchSize), {batchSize, normalize: true}) // warm-up (kernels, tokenizer)
  let tokens = 0
  const t0 = performance.now()
  await enc.encode(texts, {batchSize, normalize: true, onEvent: (e) => (tokens = e.tokens ?? 0)})
  const s = (performance.now() - t0) / 1000
  console.log(
    `${label.padEnd(34)} batch ${String(batchSize).padStart(2)}: ${(texts.length / s).toFixed(1).padStart(7)} texts/s, ${(tokens / s).toFixed(0).padStart(6)} tokens/s (${texts.length} texts, ${tokens} tokens, ${s.toFixed(2)} s)`,
  )
}

const tiny = await loadEncoder(join(sharedDir, 'fixtures', 'models', 'bert-tiny', 'model'), {registry: BUILTINS})
await measure('bert-tiny (2 x 64)', tiny, 32)
tiny.dispose()

const shape = large ? {name: 'MiniLM-L6-sized', layers: 6, hidden: 384, heads: 12, intermediate: 1536} : {name: 'BERT-mini-sized', layers: 4, hidden: 256, heads: 4, intermediate: 1024}
const mini = await initRandomEncoder({registry: BUILTINS, arch: 'bert', tokenizerDir: join(sharedDir, 'data', 'bert-vocab-zh'), maxPositions: 512, ...shape})
const params = [...mini.variables.values()].reduce((n, v) => n + v.size, 0)
await measure(`${shape.name} (${(params / 1e6).toFixed(1)}M params)`, mini, 32)

// One training step's forward + backward (no optimizer) at batch 8.
const trainBatch = 8
const batch = await mini.tokenize(texts.slice(0, trainBatch))
const vars = [...mini.variables.values()]
const step = () => {
  const {value, grads} = tf.variableGrads(() => {
    const e = mini.pool(mini.forward(batch, {training: true}).lastHiddenState, batch, {normalize: true})
    return tf.sum(tf.matMul(e, e, false, true)) as tf.Scalar
  }, vars)
  value.dispose()
  tf.dispose(grads)
}
step()
const t0 = performance.now()
const steps = 2
for (let i = 0; i < steps; i++) step()
const ms = (performance.now() - t0) / steps
console.log(`${shape.name} forward+backward batch ${trainBatch} (${batch.seqLen} tokens): ${ms.toFixed(0)} ms/step, ${((trainBatch * 1000) / ms).toFixed(1)} texts/s`)
console.log(`tensors alive after the bench: ${tf.memory().numTensors} (the model's ${mini.variables.size} variables)`)
mini.dispose()
