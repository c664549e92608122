/**
 * A small, real, differentiable encoder for trainer tests: character embeddings followed by
 * residual tanh layers, mean pooling that skips instruction-prefix tokens, dropout with seeds, and
 * save/load of its weights. It implements the trainer's TrainableEncoder contract so trainer
 * mechanics (GradCache, resume, leaks) are tested in milliseconds; the real BERT-family encoder is
 * exercised by the end-to-end training run.
 */
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import {writeDirectoryAtomic} from '../../src/core/fs-atomic.js'
import {openSafetensors} from '../../src/io/safetensors.js'
import {writeSafetensors} from '../../src/io/safetensors-stream.js'
import type {TokenBatchLike, TrainableEncoder} from '../../src/train/types.js'

export interface ToyBatch extends TokenBatchLike {
  inputIds: Int32Array
  poolMask: Float32Array
}

let instances = 0

export class ToyEncoder implements TrainableEncoder<ToyBatch> {
  readonly variables = new Map<string, tf.Variable>()
  readonly hiddenSize: number
  private readonly id = instances++

  constructor(readonly numLayers: number, hidden: number, readonly vocab: number, seed: number, readonly dropoutRate = 0.1) {
    this.hiddenSize = hidden
    const add = (name: string, init: tf.Tensor) => this.variables.set(name, tf.variable(init, true, `toy${this.id}.${name}`))
    add('embeddings.weight', tf.randomNormal([vocab, hidden], 0, 0.5, 'float32', seed))
    for (let l = 0; l < numLayers; l++) {
      add(`layer.${l}.weight`, tf.randomNormal([hidden, hidden], 0, 0.3, 'float32', seed + 1 + l))
    }
  }

  async tokenize(texts: string[], options: {maxLength?: number; prefixes?: string[]}): Promise<ToyBatch> {
    const maxLength = options.maxLength ?? 64
    const rows = texts.map((t) => [...t].slice(0, maxLength).map((ch) => (ch.codePointAt(0)! % (this.vocab - 1)) + 1))
    const seqLen = Math.max(1, ...rows.map((r) => r.length))
    const inputIds = new Int32Array(texts.length * seqLen)
    const poolMask = new Float32Array(texts.length * seqLen)
    rows.forEach((r, i) => {
      const skip = Math.min([...(options.prefixes?.[i] ?? '')].length, r.length - 1)
      r.forEach((id, t) => {
        inputIds[i * seqLen + t] = id
        if (t >= skip) poolMask[i * seqLen + t] = 1
      })
    })
    return {batchSize: texts.length, seqLen, lengths: rows.map((r) => r.length), inputIds, poolMask}
  }

  forward(batch: ToyBatch, options: {training: boolean; seed?: number}) {
    const hiddenStates: tf.Tensor3D[] = []
    let h = tf.reshape(tf.gather(this.variables.get('embeddings.weight')!, tf.tensor1d(batch.inputIds, 'int32')), [batch.batchSize * batch.seqLen, this.hiddenSize]) as tf.Tensor2D
    hiddenStates.push(tf.reshape(h, [batch.batchSize, batch.seqLen, this.hiddenSize]))
    for (let l = 0; l < this.numLayers; l++) {
      // No bias: broadcasting adds are slow on the pure-JS backend, and the test does not need one.
      let update: tf.Tensor = tf.tanh(tf.matMul(h, this.variables.get(`layer.${l}.weight`)!))
      if (options.training && this.dropoutRate > 0) update = tf.dropout(update, this.dropoutRate, undefined, (options.seed ?? 0) + l)
      h = tf.add(h, update) as tf.Tensor2D
      hiddenStates.push(tf.reshape(h, [batch.batchSize, batch.seqLen, this.hiddenSize]))
    }
    return {lastHiddenState: hiddenStates[hiddenStates.length - 1], hiddenStates}
  }

  pool(hidden: tf.Tensor3D, batch: ToyBatch, options: {normalize?: boolean} = {}): tf.Tensor2D {
    // Mean over the pooled tokens as one batched matmul: [B, 1, T] × [B, T, H].
    const weights = new Float32Array(batch.poolMask.length)
    for (let b = 0; b < batch.batchSize; b++) {
      let count = 0
      for (let t = 0; t < batch.seqLen; t++) count += batch.poolMask[b * batch.seqLen + t]
      for (let t = 0; t < batch.seqLen; t++) weights[b * batch.seqLen + t] = batch.poolMask[b * batch.seqLen + t] / Math.max(count, 1)
    }
    const pooled = tf.reshape(tf.matMul(tf.tensor3d(weights, [batch.batchSize, 1, batch.seqLen]), hidden), [batch.batchSize, this.hiddenSize]) as tf.Tensor2D
    return options.normalize ? (tf.div(pooled, tf.norm(pooled, 'euclidean', 1, true)) as tf.Tensor2D) : pooled
  }

  async save(dir: string, options: {extraFiles?: Record<string, string | Uint8Array>} = {}): Promise<void> {
    const tensors: {name: string; shape: number[]; data: Float32Array}[] = []
    for (const [name, v] of this.variables) tensors.push({name, shape: v.shape, data: (await v.data()) as Float32Array})
    await writeDirectoryAtomic(dir, async (staging) => {
      await writeSafetensors(join(staging, 'model.safetensors'), tensors)
      writeFileSync(join(staging, 'toy.json'), JSON.stringify({layers: this.numLayers, hidden: this.hiddenSize, vocab: this.vocab, dropout: this.dropoutRate}))
      for (const [name, content] of Object.entries(options.extraFiles ?? {})) writeFileSync(join(staging, name), content)
    })
  }

  /** Overwrites the weights with those saved in `dir`. */
  async loadWeights(dir: string): Promise<void> {
    const file = await openSafetensors(dir)
    for (const [name, v] of this.variables) {
      const t = await file.read(name)
      tf.tidy(() => v.assign(tf.tensor(t.data as Float32Array, t.shape as number[])))
    }
    await file.close()
  }

  dispose(): void {
    for (const v of this.variables.values()) v.dispose()
  }
}
