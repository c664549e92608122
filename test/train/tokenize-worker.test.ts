import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'
import {threadId} from 'node:worker_threads'
import * as tf from '@tensorflow/tfjs-core'
import {shared, useTestBackend, BUILTINS} from '../helpers/env.js'
import {irDataset} from './fixtures.js'
import type {StsPairRecord} from '../../src/io/arrow-records.js'
import {ensureGradients} from '../../src/train/gradients.js'
import {loadTokenizer, type TokenizeTextError} from '../../src/model/tokenizer/tokenizer.js'
import {initRandomEncoder} from '../../src/model/encoder.js'
import {create as createIrInfoNce} from '../../src/train/losses/ir-infonce.js'
import {create as createCodiembSts} from '../../src/train/losses/codiemb-sts.js'
import {create as createDynamic} from '../../src/train/samplers/dynamic.js'
import {IrObjective, StsObjective} from '../../src/train/objective.js'
import {PAPER_INSTRUCTIONS, type StsTrainingDataset, type TrainingDataset} from '../../src/train/data.js'
import {Trainer} from '../../src/train/trainer.js'
import type {IrLoss, StsLoss} from '../../src/train/losses/types.js'

/** Real STS-B-zh pairs from ../shared (raw tab-separated file: text1, text2, score 0–5). */
function stsbRows(dataDir: string, limit: number): StsTrainingDataset & {rows: StsPairRecord[]} {
  const lines = readFileSync(join(dataDir, 'stsb-zh', 'STS-B.train.data'), 'utf8').split('\n').filter(Boolean).slice(0, limit)
  const rows = lines.map((line, i) => {
    const [text1, text2, score] = line.split('\t')
    return {id: `stsb-${i}`, text1, text2, score: Number(score) / 5, raw_score: Number(score), instruction: '检索语义相似的句子'}
  })
  return {task: 'sts', name: 'stsb-zh', path: 'STS-B.train.data', rows, dropped: 0}
}

test('WordPiece on a worker thread: identical batches to the main thread, off-thread, errors name the text, stops cleanly', async (t) => {
  const dataDir = shared(t, 'data')
  if (!dataDir) return
  const tk = await loadTokenizer(join(dataDir, 'bert-vocab-zh'))
  assert.equal(tk.source, 'vocab.txt')
  const pairs = stsbRows(dataDir, 120).rows
  const texts = [...pairs.map((r) => 'Instruction: 相似 Query: ' + r.text1), 'Héllo WORLD, naïve café! [MASK] 😀 x²', '', '   ']
  const options = {maxLength: 40, prefixLengths: texts.map((s) => (s.startsWith('Instruction') ? 'Instruction: 相似 Query: '.length : 0))}
  const mainStart = Date.now()
  const onMain = await tk.encodeBatch(texts, options)
  const mainMs = Date.now() - mainStart
  assert.equal(tk.workerStats!(), undefined)

  const stop = await tk.startWorker!()
  const stats = tk.workerStats!()!
  assert.notEqual(stats.threadId, threadId, 'a separate thread')
  // While the main thread is busy (as during a training step), the worker tokenizes.
  const pending = tk.encodeBatch(texts, options)
  let settled = false
  void pending.then(() => (settled = true))
  // Busy for many times what the batch took on the main thread: on a loaded machine the worker is slowed as much.
  const busyUntil = Date.now() + Math.min(15_000, Math.max(400, 20 * mainMs))
  while (Date.now() < busyUntil) {
    // a synchronous "tensor step"
  }
  assert.equal(settled, false)
  await new Promise((resolve) => setImmediate(resolve))
  assert.equal(settled, true, 'the batch was ready as soon as the main thread came back')
  assert.deepEqual(await pending, onMain)
  assert.equal(tk.workerStats!()!.batches, 1)

  await assert.rejects(tk.encodeBatch(['一个人', null as unknown as string, 'x'], {maxLength: 8}), (error: TokenizeTextError) => {
    assert.equal(error.name, 'TokenizeTextError')
    assert.equal(error.index, 1)
    assert.match(error.message, /text 1 is null, expected a string/)
    return true
  })
  // The worker survives a bad text.
  assert.deepEqual(await tk.encodeBatch(texts.slice(0, 3), {maxLength: 16}), await mainThread(texts.slice(0, 3), 16))
  await stop()
  assert.equal(tk.workerStats!(), undefined, 'worker terminated')
  assert.deepEqual(await tk.encodeBatch(texts, options), onMain, 'back on the main thread after stop')

  async function mainThread(xs: string[], maxLength: number) {
    const other = await loadTokenizer(join(dataDir!, 'bert-vocab-zh'))
    return other.encodeBatch(xs, {maxLength})
  }
})

test('training tokenizes WordPiece batches on a worker ahead of the step; same losses as main-thread tokenization; worker ends with training', async (t) => {
  const dataDir = shared(t, 'data')
  if (!dataDir) return
  await useTestBackend()
  await ensureGradients()
  const PREFETCH = 2
  const run = async (tokenizeInWorker: boolean, datasets: TrainingDataset[]) => {
    const encoder = await initRandomEncoder({registry: BUILTINS, arch: 'bert', tokenizerDir: join(dataDir, 'bert-vocab-zh'), layers: 1, hidden: 16, heads: 2, intermediate: 32, maxPositions: 64, seed: 3})
    const issued: number[] = [] // tokenize calls issued so far, recorded at each step
    let calls = 0
    const tokenize = encoder.tokenize.bind(encoder)
    encoder.tokenize = (texts, options) => {
      calls++
      return tokenize(texts, options)
    }
    const workerAtStep: (number | undefined)[] = []
    const trainer = new Trainer({
      encoder,
      datasets,
      sampler: createDynamic(datasets.map((d) => ({name: d.name, task: d.task, size: d.rows.length})), {batchSizes: {ir: 4, sts: 6}}, 2),
      objectives: {
        ir: new IrObjective([{loss: createIrInfoNce({positives: 1, negatives: 2, temperature: 0.05}) as IrLoss, weight: 1}]),
        sts: new StsObjective([{loss: createCodiembSts({}) as StsLoss, weight: 1}]),
      },
      optimizer: {learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, maxGradNorm: 1},
      warmupRatio: 0,
      epochs: 1,
      gradientAccumulation: 1,
      seed: 9,
      maxLength: {query: 32, passage: 32, sts: 32},
      instructions: PAPER_INSTRUCTIONS,
      dropout: true,
      prefetch: PREFETCH,
      settings: 'worker-test',
      tokenizeInWorker,
      onEvent: (event) => {
        if (event.type !== 'step') return
        issued.push(calls)
        workerAtStep.push(encoder.tokenizer.workerStats?.()?.batches)
      },
    })
    try {
      const summary = await trainer.run()
      return {summary, issued, workerAtStep, workerAfter: encoder.tokenizer.workerStats?.()}
    } finally {
      trainer.dispose()
      encoder.dispose()
    }
  }
  const datasets = [irDataset(12), stsbRows(dataDir, 24)]
  const before = tf.memory().numTensors
  const inWorker = await run(true, datasets)
  const onMain = await run(false, datasets)
  assert.equal(tf.memory().numTensors, before)
  const steps = inWorker.summary.steps
  assert.equal(steps, 7) // 3 IR batches of 4 + 4 STS batches of 6
  assert.deepEqual(inWorker.summary.history, onMain.summary.history, 'identical tokens give identical losses')
  assert.equal(inWorker.summary.pipeline.tokenizerThread, 'worker')
  assert.equal(onMain.summary.pipeline.tokenizerThread, 'caller')
  assert.equal(inWorker.summary.pipeline.batches, steps)
  // Every batch part is two tokenize calls; when step k finishes, the batches up to k + PREFETCH
  // (or all of them) have already been handed to the tokenizer.
  inWorker.issued.forEach((calls, i) => assert.ok(calls >= 2 * Math.min(steps, i + 1 + PREFETCH), `step ${i + 1}: only ${calls} tokenize calls issued`))
  // ...and the worker thread did that tokenization while training ran.
  assert.ok(inWorker.workerAtStep.every((n) => typeof n === 'number' && n > 0), `worker batches at each step: ${inWorker.workerAtStep.join(', ')}`)
  assert.ok(inWorker.workerAtStep.at(-1)! >= 2 * steps - 2)
  assert.equal(inWorker.workerAfter, undefined, 'the worker is stopped when training ends')
  assert.ok(onMain.workerAtStep.every((n) => n === undefined))
})

test('a passage that is not a text fails training with the file, row, id and field before it reaches the worker; the worker is stopped', async (t) => {
  const dataDir = shared(t, 'data')
  if (!dataDir) return
  await useTestBackend()
  await ensureGradients()
  const encoder = await initRandomEncoder({registry: BUILTINS, arch: 'bert', tokenizerDir: join(dataDir, 'bert-vocab-zh'), layers: 1, hidden: 8, heads: 2, intermediate: 16, maxPositions: 32, seed: 1})
  // Passages would go to the tokenizer as stored; the batch's text check refuses the row first.
  const ir = irDataset(6)
  ir.path = 'broken.ir-example.arrow'
  ir.rows[4] = {...ir.rows[4], positives: [null as unknown as string]}
  const trainer = new Trainer({
    encoder,
    datasets: [ir],
    sampler: createDynamic([{name: 'toy-ir', task: 'ir', size: 6}], {batchSizes: {ir: 3}}, 1),
    objectives: {ir: new IrObjective([{loss: createIrInfoNce({positives: 1, negatives: 2, temperature: 0.05}) as IrLoss, weight: 1}])},
    optimizer: {learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, maxGradNorm: 1},
    warmupRatio: 0,
    epochs: 1,
    gradientAccumulation: 1,
    seed: 1,
    maxLength: {query: 16, passage: 16, sts: 16},
    instructions: PAPER_INSTRUCTIONS,
    dropout: false,
    prefetch: 2,
    settings: 'x',
  })
  await assert.rejects(trainer.run(), {name: 'TrainingDataError', message: /broken\.ir-example\.arrow: row 4 \(id "q4"\): positives\[0\]: expected a text with a non-space character, got null/})
  assert.equal(encoder.tokenizer.workerStats?.(), undefined)
  trainer.dispose()
  encoder.dispose()
})
