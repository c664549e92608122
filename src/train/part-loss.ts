/**
 * The objective of one prepared batch part and its gradients with respect to the encoder's
 * trainable parameters. Embedding = encoder forward (with dropout when training, masks seeded per
 * text field: seed ^ 1 for queries / first texts, seed ^ 2 for passages / second texts), pooling and
 * L2 normalisation; the task objective is then computed on the embeddings in float32. IR parts whose
 * objective sets a cache chunk size are differentiated by GradCache (gradcache.ts), every other part
 * directly.
 */
import type * as tf from '@tensorflow/tfjs-core'
import {variableGrads} from '../tensor/backprop.js'
import type {PreparedPart} from './batch.js'
import {type ChunkModel, gradCacheIr} from './gradcache.js'
import type {DeviceGroup, IrEmbeddings, StsEmbeddings} from './losses/types.js'
import type {Collectives} from '../tensor/collectives.js'
import type {ComponentSink, TaskObjective} from './objective.js'
import type {TokenBatchLike, TrainableEncoder} from './types.js'

export class PartLoss<B extends TokenBatchLike> implements ChunkModel<B> {
  private readonly paramList: tf.Variable[]
  /** tfjs variable name → checkpoint tensor name. */
  private readonly nameOf = new Map<string, string>()
  /** Hidden-state index pooled for middle-layer losses (0 is the embedding output). */
  readonly middleLayer: number
  /** Whether training passes use the encoder's dropout. */
  private readonly dropout: boolean
  /** Whether forward passes recompute each layer in backward instead of keeping its activations. */
  private readonly checkpointLayers: boolean
  /** GradCache chunk size of IR parts (the objective's, or the one `auto` resolved to); undefined: no GradCache. */
  readonly chunkSize?: number
  /** The ranks of a data-parallel run, for losses that gather across them (training passes only). */
  readonly devices?: DeviceGroup

  /**
   * `middleLayer` defaults to ⌊layers/2⌋ (at least 1); `dropout` says whether training passes use
   * the encoder's dropout (off makes a step a deterministic function of the weights);
   * `checkpointLayers` turns on activation checkpointing (same gradients, less memory);
   * `chunkSize` is the GradCache chunk size an IR objective configured as `auto` resolved to.
   */
  constructor(
    readonly encoder: TrainableEncoder<B>,
    readonly objectives: TaskObjective,
    options: {middleLayer?: number; dropout: boolean; checkpointLayers?: boolean; chunkSize?: number; collectives?: Collectives},
  ) {
    this.paramList = [...encoder.variables.values()]
    for (const [name, v] of encoder.variables) this.nameOf.set(v.name, name)
    this.dropout = options.dropout
    this.checkpointLayers = options.checkpointLayers ?? false
    const c = options.collectives
    if (c && c.worldSize > 1) this.devices = {rank: c.rank, worldSize: c.worldSize, allGather: (t) => c.allGatherSync(t) as tf.Tensor2D[]}
    const configured = objectives.ir?.cacheChunkSize
    if (configured === 'auto' && options.chunkSize === undefined)
      throw new Error('ir-infonce cache.chunkSize is "auto": resolve it first (the memory plan\'s autoChunkSize, src/train/memory-plan.ts) and pass the result as the trainer\'s gradCacheChunkSize')
    this.chunkSize = configured === undefined ? undefined : (options.chunkSize ?? (configured as number))
    this.middleLayer = options.middleLayer ?? Math.max(1, Math.floor(encoder.numLayers / 2))
    if (this.middleLayer < 0 || this.middleLayer > encoder.numLayers)
      throw new Error(`middleLayer ${this.middleLayer} is outside 0..${encoder.numLayers}`)
  }

  /** Pooled, L2-normalised embeddings of the last hidden state and, when `layer` is given, of that hidden state. */
  embed(batch: B, seed: number, layer: number | undefined, training: boolean): {last: tf.Tensor2D; middle?: tf.Tensor2D} {
    const {lastHiddenState, hiddenStates} = this.encoder.forward(batch, {training, seed, checkpointLayers: this.checkpointLayers})
    const last = this.encoder.pool(lastHiddenState, batch, {normalize: true})
    const middle = layer === undefined ? undefined : this.encoder.pool(hiddenStates[layer], batch, {normalize: true})
    return {last, middle}
  }

  embedChunk(batch: B, seed: number): tf.Tensor2D {
    return this.embed(batch, seed, undefined, this.dropout).last
  }

  /** The objective of one part, embedded in one pass (inside variableGrads when training, inside tidy for probes). */
  loss(part: PreparedPart<B>, seed: number, training: boolean, sink?: ComponentSink, gather = false): tf.Scalar {
    if (part.task === 'ir') {
      const irBatch: IrEmbeddings = {
        queries: this.embed(part.queries, seed ^ 0x1, undefined, training).last,
        passages: this.embed(part.passages, seed ^ 0x2, undefined, training).last,
        positives: part.texts.positives,
        negatives: part.texts.negatives,
        // Only gradient passes gather (every rank runs them); probes run on rank 0 alone.
        ...(gather && this.devices ? {devices: this.devices} : {}),
      }
      return this.objectives.ir!.compute(irBatch, sink)
    }
    const objective = this.objectives.sts!
    const layer = objective.needsMiddleLayer ? this.middleLayer : undefined
    const left = this.embed(part.left, seed ^ 0x1, layer, training)
    const right = this.embed(part.right, seed ^ 0x2, layer, training)
    const stsBatch: StsEmbeddings = {left: left.last, right: right.last, leftMiddle: left.middle, rightMiddle: right.middle, labels: part.texts.labels}
    return objective.compute(stsBatch, sink)
  }

  /** The objective of one part in training mode and its parameter gradients (by GradCache where configured). */
  gradients(part: PreparedPart<B>, seed: number, sink?: ComponentSink): {value: number; grads: Map<string, tf.Tensor>} {
    const chunkSize = part.task === 'ir' ? this.chunkSize : undefined
    if (part.task === 'ir' && chunkSize) return gradCacheIr(this, this.objectives.ir!, part, seed, chunkSize, sink)
    const {value, grads} = this.parameterGradients(() => this.loss(part, seed, this.dropout, sink, true))
    const v = value.dataSync()[0]
    value.dispose()
    return {value: v, grads}
  }

  parameterGradients(f: () => tf.Scalar): {value: tf.Scalar; grads: Map<string, tf.Tensor>} {
    const {value, grads} = variableGrads(f, this.paramList)
    const byName = new Map<string, tf.Tensor>()
    for (const [tfName, g] of Object.entries(grads)) byName.set(this.nameOf.get(tfName) ?? tfName, g)
    return {value, grads: byName}
  }
}
