/**
 * LoRA smoke tests (src/model/lora.ts) on a decoder (qwen3-tiny) and on the BERT family (bert-tiny):
 * adapters train (the loss falls) while the base weights stay byte for byte what the checkpoint holds;
 * the saved PEFT adapter folder reloads to the same embeddings and resumes training; the folded model
 * matches base + adapter within 1e-5, and merge refuses an unfolded adapter folder.
 */
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import {loadEncoder, type Encoder} from '../../src/model/encoder.js'
import {openSafetensors} from '../../src/io/safetensors.js'
import {create as createIrInfoNce} from '../../src/train/losses/ir-infonce.js'
import {create as createDynamic} from '../../src/train/samplers/dynamic.js'
import type {IrTrainingDataset} from '../../src/train/data.js'
import {IrObjective} from '../../src/train/objective.js'
import {Trainer} from '../../src/train/trainer.js'
import type {IrLoss} from '../../src/train/losses/types.js'
import type {TokenBatch} from '../../src/model/tokenizer/tokenizer.js'
import {mergeCheckpoints} from '../../src/merge/engine.js'
import {listCheckpoints} from '../../src/train/checkpoint.js'
import {shared, useTestBackend, BUILTINS} from '../helpers/env.js'
import {loadableFixture} from '../helpers/decoder-fixtures.js'

/** IR rows whose positives share the query's words and whose negatives do not (words from `vocab`). */
function dataset(vocab: string[]): IrTrainingDataset {
  const w = (i: number) => vocab[i % vocab.length]!
  const rows = Array.from({length: 16}, (_, i) => ({
    id: `q${i}`,
    query: `${w(3 * i)} ${w(3 * i + 1)}`,
    instruction: '',
    positives: [`${w(3 * i + 2)} ${w(3 * i)} ${w(3 * i + 1)}`],
    negatives: [1, 2, 3].map((k) => `${w(3 * i + 7 * k + 5)} ${w(3 * i + 11 * k + 2)} ${w(3 * i + 13 * k)}`),
    positive_scores: null,
    negative_scores: null,
  }))
  return {task: 'ir', name: 'lora-ir', path: '(memory)', rows, dropped: 0}
}

function trainer(encoder: Encoder, data: IrTrainingDataset, checkpointDir: string, dropout = false): Trainer<TokenBatch> {
  const sampler = createDynamic([{name: data.name, task: 'ir', size: data.rows.length}], {batchSizes: {ir: 4, sts: 4}}, 3)
  return new Trainer<TokenBatch>({
    encoder,
    datasets: [data],
    sampler,
    objectives: {ir: new IrObjective([{loss: createIrInfoNce({positives: 1, negatives: 3, temperature: 0.05}) as IrLoss, weight: 1}])},
    optimizer: {learningRate: 2e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0, maxGradNorm: 1},
    warmupRatio: 0,
    epochs: 3,
    gradientAccumulation: 1,
    seed: 5,
    maxLength: {query: 16, passage: 16, sts: 16},
    instructions: {template: 'Instruction: {instruction} Query: ', queries: true, sts: true},
    dropout,
    prefetch: 1,
    tokenizeInWorker: false,
    checkpoint: {dir: checkpointDir, everyEpoch: true, everySteps: 0, keepLast: 0},
    settings: 'lora-test',
    // The same 4 batches (all 16 rows) measured before and after training: a loss curve free of batch noise.
    probe: {batches: 4, seed: 1},
  })
}

const maxDiff = (a: Float32Array[], b: Float32Array[]) => Math.max(...a.flatMap((row, i) => [...row].map((x, k) => Math.abs(x - b[i]![k]!))))

const CASES = [
  {name: 'qwen3-tiny', targets: ['q_proj', 'v_proj', 'down_proj'], prefix: 'layers.0.self_attn.q_proj', dropout: 0},
  {name: 'bert-tiny', targets: ['query', 'value'], prefix: 'encoder.layer.0.attention.self.query', dropout: 0},
  // LoRA dropout: trained with dropout on (the adapters applied unmerged), resumed from the first epoch's checkpoint to the same adapters.
  {name: 'qwen3-tiny', targets: ['q_proj', 'v_proj', 'down_proj'], prefix: 'layers.0.self_attn.q_proj', dropout: 0.2},
] as const

for (const c of CASES) {
  test(`LoRA on ${c.name}${c.dropout ? ` with dropout ${c.dropout}` : ''}: the loss falls, base weights stay byte-identical, the adapter reloads, resumes and folds`, async (t) => {
    const fixture = shared(t, 'fixtures', 'models', c.name)
    if (!fixture) return
    await useTestBackend()
    const work = mkdtempSync(join(tmpdir(), 'codiemb-lora-'))
    const base = c.name === 'qwen3-tiny' ? loadableFixture(fixture, 'left') : join(fixture, 'model')
    const encoder = await loadEncoder(base, {registry: BUILTINS})
    if (c.name === 'qwen3-tiny') encoder.pooling = 'last-token'
    encoder.normalize = true
    const vocab = c.name === 'qwen3-tiny' ? Array.from({length: 300}, (_, i) => `t${i + 3}`) : 'apple river engine violin garden comet ladder pepper harbor candle red green blue amber teal pink'.split(' ')
    const data = dataset(vocab)
    // the rows built in memory above (a TrainingDataset's rows may also be a streamed row source)
    const texts = (data.rows as {query: string; positives: string[]}[]).slice(0, 5).flatMap((r) => [r.query, r.positives[0]!])
    try {
      const before = await encoder.encode(texts)
      encoder.addLora({rank: 4, alpha: 8, dropout: c.dropout, targetModules: [...c.targets]}, 1)
      assert.ok([...encoder.variables.keys()].every((n) => /\.lora_[AB]\.weight$/.test(n)), 'only adapters are trainable')
      assert.ok(encoder.variables.has(`${c.prefix}.lora_A.weight`))
      assert.ok(maxDiff(await encoder.encode(texts), before) < 1e-6, 'B = 0: adapters start as the identity')

      const run = trainer(encoder, data, join(work, 'ckpt'), c.dropout > 0)
      const tensorsBefore = tf.memory().numTensors
      const summary = await run.run()
      run.dispose()
      assert.ok(tf.memory().numTensors <= tensorsBefore + 2, `tensors leaked: ${tensorsBefore} -> ${tf.memory().numTensors}`)
      const head = summary.probe!.first.loss.ir!
      const tail = summary.probe!.last.loss.ir!
      assert.ok(tail < head * 0.8, `the probe loss falls: ${head.toFixed(4)} before, ${tail.toFixed(4)} after`)
      t.diagnostic(`ir probe loss ${head.toFixed(4)} -> ${tail.toFixed(4)} over ${summary.steps} steps`)

      // The frozen base is exactly the checkpoint's tensors.
      const file = await openSafetensors(base)
      try {
        for (const [name, v] of encoder.frozen!) {
          const saved = await file.read(file.tensors().find((x) => x.name === name || x.name.endsWith(`.${name}`))!.name)
          assert.deepEqual(new Uint8Array((v.dataSync() as Float32Array).buffer), new Uint8Array((saved.data as Float32Array).buffer), `${name} unchanged`)
        }
      } finally {
        await file.close()
      }

      // PEFT layout.
      const adapter = join(work, 'adapter')
      await encoder.save(adapter)
      assert.ok(!existsSync(join(adapter, 'config.json')) && !existsSync(join(adapter, 'model.safetensors')))
      const config = JSON.parse(readFileSync(join(adapter, 'adapter_config.json'), 'utf8'))
      assert.equal(config.peft_type, 'LORA')
      assert.equal(config.task_type, 'FEATURE_EXTRACTION')
      assert.equal(config.r, 4)
      assert.equal(config.lora_alpha, 8)
      assert.equal(config.lora_dropout, c.dropout)
      assert.deepEqual(config.target_modules, [...c.targets])
      assert.equal(config.base_model_name_or_path, base)
      const weights = await openSafetensors(join(adapter, 'adapter_model.safetensors'))
      const infos = weights.tensors()
      await weights.close()
      const a = infos.find((x) => x.name === `base_model.model.${c.prefix}.lora_A.weight`)!
      const b = infos.find((x) => x.name === `base_model.model.${c.prefix}.lora_B.weight`)!
      const hidden = encoder.hiddenSize
      assert.deepEqual(a.shape, [4, hidden])
      assert.equal(b.shape[1], 4)
      assert.ok(infos.every((x) => /^base_model\.model\..+\.lora_[AB]\.weight$/.test(x.name)))

      const trained = await encoder.encode(texts)
      assert.ok(maxDiff(trained, before) > 1e-3, 'training moved the embeddings')
      const reloaded = await loadEncoder(adapter, {registry: BUILTINS})
      try {
        assert.equal(maxDiff(await reloaded.encode(texts), trained), 0, 'the reloaded adapter gives the same embeddings')
        reloaded.foldLora()
        assert.equal(reloaded.lora, undefined)
        const folded = join(work, 'folded')
        await reloaded.save(folded)
        const full = await loadEncoder(folded, {registry: BUILTINS})
        const diff = maxDiff(await full.encode(texts), trained)
        full.dispose()
        assert.ok(diff <= 1e-5, `folded model differs from base + adapter by ${diff}`)
        t.diagnostic(`folded vs base + adapter: ${diff.toExponential(2)}`)
      } finally {
        reloaded.dispose()
      }

      // A checkpoint resumes: its adapters and the optimizer's moments of them load. With dropout, from
      // the first epoch's checkpoint to the end: the same masks are drawn, so the same adapters result.
      const ckpts = listCheckpoints(join(work, 'ckpt'))
      const ckpt = (c.dropout > 0 ? ckpts[0] : ckpts.at(-1))!.path
      const resumed = await loadEncoder(ckpt, {registry: BUILTINS})
      try {
        assert.equal(resumed.lora!.options.dropout, c.dropout)
        const again = trainer(resumed, data, join(work, 'ckpt2'), c.dropout > 0)
        const state = await again.resumeFrom(ckpt)
        assert.ok(state.step > 0)
        if (c.dropout > 0) {
          assert.ok(state.step < summary.steps, `resumed at step ${state.step} of ${summary.steps}`)
          await again.run()
          let worst = 0
          for (const [name, v] of encoder.variables) {
            const a = v.dataSync() as Float32Array
            const b = resumed.variables.get(name)!.dataSync() as Float32Array
            a.forEach((x, i) => (worst = Math.max(worst, Math.abs(x - b[i]!))))
          }
          assert.ok(worst <= 1e-6, `resumed adapters differ from the uninterrupted run's by ${worst}`)
          t.diagnostic(`resumed at step ${state.step} of ${summary.steps}: adapters differ by ${worst.toExponential(2)}`)
        }
        again.dispose()
      } finally {
        resumed.dispose()
      }

      await assert.rejects(
        mergeCheckpoints({registry: BUILTINS, method: 'soup', checkpoints: [adapter, adapter], out: join(work, 'merged')} as never),
        /a LoRA adapter folder, not a full model; fold it into its base first/,
      )
    } finally {
      encoder.dispose()
      rmSync(work, {recursive: true, force: true})
    }
  })
}

test('LoRA under activation checkpointing: the adapters get the same gradients as without it', async (t) => {
  const fixture = shared(t, 'fixtures', 'models', 'qwen3-tiny')
  if (!fixture) return
  await useTestBackend()
  const encoder = await loadEncoder(loadableFixture(fixture, 'left'), {registry: BUILTINS})
  try {
    encoder.addLora({rank: 2, alpha: 4, dropout: 0, targetModules: 'all-linear'}, 3)
    // Non-zero B, so every adapter factor has a gradient.
    for (const [name, v] of encoder.variables) if (name.endsWith('lora_B.weight')) tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.05, 'float32', 9)))
    const batch = await encoder.tokenize(['t5 t9 t33', 't7 t8', 't100 t101 t102 t103'])
    const params = [...encoder.variables.values()]
    const grads = (checkpointLayers: boolean) =>
      tf.tidy(() => {
        const {grads} = tf.variableGrads(() => tf.sum(tf.square(encoder.pool(encoder.forward(batch, {training: true, seed: 1, checkpointLayers}).lastHiddenState, batch, {pooling: 'mean', normalize: false}))) as tf.Scalar, params)
        return Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, [...(g.dataSync() as Float32Array)]]))
      })
    const plain = grads(false)
    const checkpointed = grads(true)
    assert.equal(Object.keys(plain).length, params.length)
    let worst = 0
    let largest = 0
    for (const [k, g] of Object.entries(plain)) g.forEach((x, i) => ((worst = Math.max(worst, Math.abs(x - checkpointed[k]![i]!))), (largest = Math.max(largest, Math.abs(x)))))
    assert.ok(largest > 1e-4, 'the adapters have gradients')
    assert.ok(worst <= 1e-5 * Math.max(1, largest), `checkpointed gradients differ by ${worst} (largest ${largest})`)
  } finally {
    encoder.dispose()
  }
})

test('LoRA dropout: masks seeded per pass, the same under activation checkpointing, none at inference; unmerged adapters compute the folded ones', async (t) => {
  const qwen = shared(t, 'fixtures', 'models', 'qwen3-tiny')
  const bert = shared(t, 'fixtures', 'models', 'bert-tiny')
  if (!qwen || !bert) return
  await useTestBackend()
  const models = [
    {dir: loadableFixture(qwen, 'left'), texts: ['t5 t9 t33', 't7 t8', 't100 t101 t102 t103']},
    // bert-tiny's own dropout off, so that only the adapters' acts.
    {dir: join(bert, 'model'), texts: ['A man is playing a guitar.', 'Hi', 'a river in the garden'], overrides: {hidden_dropout_prob: 0, attention_probs_dropout_prob: 0}},
  ]
  for (const m of models) {
    const encoder = await loadEncoder(m.dir, {registry: BUILTINS, configOverrides: m.overrides})
    try {
      encoder.addLora({rank: 2, alpha: 4, dropout: 0.3, targetModules: 'all-linear'}, 3)
      for (const [name, v] of encoder.variables) if (name.endsWith('lora_B.weight')) tf.tidy(() => v.assign(tf.randomNormal(v.shape, 0, 0.05, 'float32', 9)))
      const batch = await encoder.tokenize(m.texts)
      const params = [...encoder.variables.values()]
      const run = (seed: number, checkpointLayers: boolean) =>
        tf.tidy(() => {
          const {value, grads} = tf.variableGrads(() => tf.sum(tf.square(encoder.pool(encoder.forward(batch, {training: true, seed, checkpointLayers}).lastHiddenState, batch, {pooling: 'mean', normalize: false}))) as tf.Scalar, params)
          return {loss: value.dataSync()[0]!, grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, [...(g.dataSync() as Float32Array)]]))}
        })
      const worstOf = (a: Record<string, number[]>, b: Record<string, number[]>) => Math.max(...Object.entries(a).flatMap(([k, g]) => g.map((x, i) => Math.abs(x - b[k]![i]!))))
      const plain = run(1, false)
      const checkpointed = run(1, true)
      const largest = Math.max(...Object.values(plain.grads).flat().map(Math.abs))
      assert.ok(largest > 1e-4, 'the adapters have gradients')
      const diff = worstOf(plain.grads, checkpointed.grads)
      assert.ok(diff <= 1e-5 * Math.max(1, largest), `checkpointed gradients differ by ${diff} (largest ${largest}): masks not redrawn the same`)
      assert.equal(run(1, false).loss, plain.loss, 'the same seed draws the same masks')
      assert.notEqual(run(2, false).loss, plain.loss, 'another seed draws other masks')
      // Inference: no dropout, the folded weights (the same as a dropout-0 adapter).
      const before = tf.memory().numTensors
      const eval1 = tf.tidy(() => encoder.pool(encoder.forward(batch).lastHiddenState, batch, {pooling: 'mean'}).arraySync())
      assert.equal(tf.memory().numTensors, before, 'no tensor leaked')
      const pooled = (training: boolean) => tf.tidy(() => encoder.pool(encoder.forward(batch, {training, seed: 4}).lastHiddenState, batch, {pooling: 'mean'}).arraySync())
      assert.deepEqual(pooled(false), eval1)
      // Unmerged with (almost) nothing dropped = folded: the two code paths compute the same function.
      encoder.lora!.options.dropout = 1e-9
      const unmerged = pooled(true)
      const gap = Math.max(...unmerged.flatMap((row, b) => row.map((x, i) => Math.abs(x - eval1[b]![i]!))))
      assert.ok(gap <= 1e-5, `unmerged adapters differ from the folded weights by ${gap}`)
      t.diagnostic(`${encoder.modelType}: checkpointed vs plain gradients ${diff.toExponential(2)}; unmerged vs folded ${gap.toExponential(2)}`)
    } finally {
      encoder.dispose()
    }
  }
})
