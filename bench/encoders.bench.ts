/**
 * Encoder throughput on the cpu backend: `codiemb embed`'s path (tokenize, forward, pool, normalise)
 * over real STS-B sentences, in texts/s and tokens/s, for
 *   - bert-tiny (the 2-layer, hidden-64 fixture), and
 *   - a random MiniLM-L6-sized BERT (6 layers, hidden 384, 12 heads, FFN 1536) with the Chinese
 *     BERT vocabulary — the size of a small real embedding model.
 * Also the forward + backward time of one training-style step (batch 16) on the MiniLM-sized model.
 * Needs ../shared (skips with a message when absent). BENCH_TEXTS sets the number of texts (default 256).
 */
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import * as tf from '@tensorflow/tfjs-core'
import {builtinRegistry} from '../src/registry/load.js'
import {selectBackend} from '../src/tensor/backend.js'
import {initRandomEncoder, loadEncoder, type Encoder} from '../src/model/encoder.js'

const root = join(fileURLToPath(import.meta.url), '..', '..', '..')
const sharedDir = process.env.CODIEMB_SHARED ?? join(root, '..', 'shared')
if (!existsSync(join(sharedDir, 'README.md'))) {
  console.log(`encoders bench skipped: ../shared is absent (set CODIEMB_SHARED)`)
  process.exit(0)
}
const count = Number(process.env.BENCH_TEXTS ?? 256)
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
  await enc.encode(texts, {batchSize, normalize: true, onProgress: (_d, _t, tk) => (tokens = tk)})
  const s = (performance.now() - t0) / 1000
  console.log(
    `${label.padEnd(34)} batch ${String(batchSize).padStart(2)}: ${(texts.length / s).toFixed(1).padStart(7)} texts/s, ${(tokens / s).toFixed(0).padStart(6)} tokens/s (${texts.length} texts, ${tokens} tokens, ${s.toFixed(2)} s)`,
  )
}

const tiny = await loadEncoder(join(sharedDir, 'fixtures', 'models', 'bert-tiny', 'model'))
await measure('bert-tiny (2 x 64)', tiny, 32)
tiny.dispose()

const mini = await initRandomEncoder({
  arch: 'bert',
  tokenizerDir: join(sharedDir, 'data', 'bert-vocab-zh'),
  layers: 6,
  hidden: 384,
  heads: 12,
  intermediate: 1536,
  maxPositions: 512,
})
const params = [...mini.variables.values()].reduce((n, v) => n + v.size, 0)
await measure(`MiniLM-L6-sized (${(params / 1e6).toFixed(1)}M params)`, mini, 32)

// One training step's forward + backward (no optimizer) at batch 16.
const batch = await mini.tokenize(texts.slice(0, 16))
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
const steps = 3
for (let i = 0; i < steps; i++) step()
const ms = (performance.now() - t0) / steps
console.log(`MiniLM-L6-sized forward+backward    batch 16 (${batch.seqLen} tokens): ${ms.toFixed(0)} ms/step, ${((16 * 1000) / ms).toFixed(1)} texts/s`)
console.log(`tensors alive after the bench: ${tf.memory().numTensors} (the model's ${mini.variables.size} variables)`)
mini.dispose()
