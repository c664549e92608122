/**
 * The CoDiEmb training loop.
 *
 * One optimizer step = `gradientAccumulation` consecutive sampler batches (fewer for the last step
 * of an epoch: accumulation never skips or drops a batch). Each batch is single-task for the
 * `dynamic`/`single` samplers; a `mixed` batch has one part per dataset and sums their task losses.
 * Per batch: assemble texts (instructions, P positives, N negatives), tokenize (ahead of time, see
 * Prefetcher), forward with dropout, pool and L2-normalise, compute the task objective in float32,
 * back-propagate. IR batches may use GradCache. Then: average over the accumulated batches, clip
 * the global norm, AdamW with linear warm-up/decay.
 *
 * Determinism: every random choice of a batch (negatives, dropout masks) is seeded from
 * (seed, epoch, batch index), and the sampler's plan from its own saved RNG state, so a run resumed
 * from a checkpoint replays exactly the batches and masks of the uninterrupted run.
 */
import * as tf from '@tensorflow/tfjs-core'
import type {IrEmbeddings, StsEmbeddings} from './losses/types.js'
import type {Sampler, SamplerBatch, SamplerState} from './samplers/types.js'
import {type TrainerState, readOptimizerState, readTrainerState, removePartialCheckpoints, writeCheckpoint} from './checkpoint.js'
import {type BatchTexts, type InstructionOptions, type TrainingDataset, batchSeed, batchTexts} from './data.js'
import {variableGrads} from '../tensor/backprop.js'
import {ensureGradients} from './gradients.js'
import type {ComponentSink, TaskObjective} from './objective.js'
import {AdamW, type AdamWOptions, clipByGlobalNorm, learningRateAt} from './optimizer.js'
import {Rng} from '../core/rng.js'
import type {TokenBatchLike, TrainableEncoder} from './types.js'
import type {ProbeResult, StepEvent, TrainSummary} from './events.js'

export type {ProbeResult, StepEvent, TrainSummary} from './events.js'

export interface TrainerOptions<B extends TokenBatchLike = TokenBatchLike> {
  encoder: TrainableEncoder<B>
  datasets: TrainingDataset[]
  sampler: Sampler
  objectives: TaskObjective
  optimizer: AdamWOptions & {maxGradNorm: number}
  /** Warm-up length: a fraction of all steps (paper 0.03) unless warmupSteps is given. */
  warmupRatio: number
  warmupSteps?: number
  epochs: number
  gradientAccumulation: number
  seed: number
  maxLength: {query: number; passage: number; sts: number}
  instructions: InstructionOptions
  /** Hidden-state index pooled for middle-layer losses (default ⌊layers/2⌋; 0 is the embedding output). */
  middleLayer?: number
  /** Dropout during training (the encoder's rates); off makes steps deterministic functions of the weights. */
  dropout: boolean
  checkpoint?: {dir: string; everyEpoch: boolean; everySteps: number; keepLast: number}
  /** Batches tokenized ahead of the step being computed. */
  prefetch: number
  /**
   * Fixed probe batches per task (drawn once, seeded, from the training data) on which the full
   * objective is measured in eval mode before the first step, after every checkpoint and epoch, and
   * at the end: a training-loss curve free of batch-composition noise.
   */
  probe?: {batches: number; seed?: number}
  onProbe?: (result: ProbeResult) => void
  /** Tokenize in a worker thread when the encoder's tokenizer would otherwise run on the main thread (default true). */
  tokenizeInWorker?: boolean
  /** Stop after this many optimizer steps in this process (tests, time-boxed runs); a checkpoint is written first if checkpointing. */
  stopAfterSteps?: number
  /** Log every step (events/progress). */
  onStep?: (event: StepEvent) => void
  onCheckpoint?: (path: string, step: number) => void
  /** Called after the last step of each epoch (validation); awaited before training goes on. */
  onEpochEnd?: (epoch: number) => Promise<void> | void
  /** Fingerprint of the settings; a resume under different settings is refused. */
  settings: string
}

interface ProbeBatch<B> {
  part: PreparedPart<B>
  seed: number
}

interface PreparedBatch<B> {
  epoch: number
  index: number
  /** Sampler state positioned at this batch (what a checkpoint taken before it must record). */
  stateBefore: SamplerState
  seed: number
  parts: PreparedPart<B>[]
  examples: number
  tokens: number
}

type PreparedPart<B> =
  | {task: 'ir'; texts: Extract<BatchTexts, {task: 'ir'}>; queries: B; passages: B}
  | {task: 'sts'; texts: Extract<BatchTexts, {task: 'sts'}>; left: B; right: B}

export class Trainer<B extends TokenBatchLike = TokenBatchLike> {
  private readonly optimizer: AdamW
  private readonly params: Map<string, tf.Variable>
  private readonly paramList: tf.Variable[]
  private readonly nameOf = new Map<string, string>()
  private readonly batchesPerEpoch: number
  readonly stepsPerEpoch: number
  readonly totalSteps: number
  readonly warmupSteps: number
  private step = 0
  private history: {step: number; loss: Record<string, number>}[] = []
  private readonly middleLayer: number
  private probeSet?: ProbeBatch<B>[]
  /** Probe measurements of the whole run, kept in checkpoints so a resumed run reports from step 0. */
  private probeHistory: ProbeResult[] = []

  constructor(private readonly o: TrainerOptions<B>) {
    this.params = o.encoder.variables
    this.paramList = [...this.params.values()]
    for (const [name, v] of this.params) this.nameOf.set(v.name, name)
    this.optimizer = new AdamW(this.params, o.optimizer)
    this.batchesPerEpoch = o.sampler.epochPlan().length
    this.stepsPerEpoch = Math.ceil(this.batchesPerEpoch / o.gradientAccumulation)
    this.totalSteps = this.stepsPerEpoch * o.epochs
    this.warmupSteps = o.warmupSteps ?? Math.round(o.warmupRatio * this.totalSteps)
    this.middleLayer = o.middleLayer ?? Math.max(1, Math.floor(o.encoder.numLayers / 2))
    if (this.middleLayer < 0 || this.middleLayer > o.encoder.numLayers)
      throw new Error(`middleLayer ${this.middleLayer} is outside 0..${o.encoder.numLayers}`)
  }

  /** Restores optimizer moments, step, sampler position and history from a checkpoint directory. */
  async resumeFrom(dir: string): Promise<TrainerState> {
    const state = readTrainerState(dir)
    if (state.settings !== this.o.settings)
      throw new Error(`${dir}: checkpoint was written with different training settings; resume needs the same config (data, sampler, losses, optimizer, seed)`)
    if (state.totalSteps !== this.totalSteps) throw new Error(`${dir}: checkpoint plans ${state.totalSteps} steps, this config ${this.totalSteps}`)
    const moments = await readOptimizerState(dir)
    this.optimizer.importState(moments.step, moments.tensors)
    this.o.sampler.setState(state.sampler)
    this.step = state.step
    this.history = state.history
    // Earlier probe measurements count only if they were taken on the same probe batches.
    const sameProbe = JSON.stringify(state.probe?.options ?? null) === JSON.stringify(this.o.probe ?? null)
    this.probeHistory = sameProbe ? [...(state.probe?.history ?? [])] : []
    return state
  }

  async run(): Promise<TrainSummary> {
    await ensureGradients()
    const o = this.o
    if (o.checkpoint) removePartialCheckpoints(o.checkpoint.dir)
    const stopWorker = o.tokenizeInWorker === false ? undefined : await o.encoder.startTokenizerWorker?.()
    try {
      return await this.runLoop(stopWorker ? 'worker' : 'caller')
    } finally {
      await stopWorker?.()
    }
  }

  private async runLoop(tokenizerThread: 'worker' | 'caller'): Promise<TrainSummary> {
    const o = this.o
    if (o.probe) this.probeSet ??= await this.probeBatches(o.probe)
    const probeBatches = this.probeSet
    const probeHistory = this.probeHistory
    const measure = (when: ProbeResult['when']) => {
      if (!probeBatches || probeHistory.at(-1)?.step === this.step) return
      const result = this.measureProbe(probeBatches, when)
      probeHistory.push(result)
      o.onProbe?.(result)
    }
    measure('start')
    const batches = this.batchStream()
    const prefetcher = new Prefetcher(batches, (b) => this.prepare(b), Math.max(1, o.prefetch))
    const started = performance.now()
    let examples = 0
    let tokens = 0
    let stepsThisRun = 0
    const checkpoints: string[] = []
    let stoppedEarly = false
    let next = await prefetcher.next()
    while (next && this.step < this.totalSteps) {
      const epoch = next.epoch
      // The batches of this optimizer step: up to GA, never crossing an epoch boundary.
      const group: PreparedBatch<B>[] = []
      while (next && next.epoch === epoch && group.length < o.gradientAccumulation) {
        group.push(next)
        next = await prefetcher.next()
      }
      const lr = learningRateAt(this.step, {learningRate: o.optimizer.learningRate, warmupSteps: this.warmupSteps, totalSteps: this.totalSteps})
      const {loss, components, gradNorm} = this.optimizerStep(group, lr)
      this.step++
      stepsThisRun++
      const stepExamples = group.reduce((a, b) => a + b.examples, 0)
      const stepTokens = group.reduce((a, b) => a + b.tokens, 0)
      examples += stepExamples
      tokens += stepTokens
      this.history.push({step: this.step, loss})
      const elapsed = (performance.now() - started) / 1000
      o.onStep?.({
        type: 'step',
        step: this.step,
        totalSteps: this.totalSteps,
        epoch,
        lr,
        loss,
        components,
        gradNorm,
        examples: stepExamples,
        tokens: stepTokens,
        examplesPerSecond: examples / elapsed,
        tokensPerSecond: tokens / elapsed,
        elapsedSeconds: elapsed,
        etaSeconds: (elapsed / stepsThisRun) * (this.totalSteps - this.step),
      })
      // Let I/O callbacks run (event streams, progress rendering, tokenizer completions): the
      // step itself is synchronous tensor work and the awaits above may resolve as microtasks.
      await new Promise((resolve) => setImmediate(resolve))
      const epochEnded = !next || next.epoch !== epoch
      const stopNow = o.stopAfterSteps !== undefined && stepsThisRun >= o.stopAfterSteps && this.step < this.totalSteps
      const checkpointDue = o.checkpoint !== undefined &&
        ((o.checkpoint.everyEpoch && epochEnded) || (o.checkpoint.everySteps > 0 && this.step % o.checkpoint.everySteps === 0) || stopNow || this.step === this.totalSteps)
      // Probe before writing, so the checkpoint carries this step's measurement (the weights are the same).
      if (checkpointDue || epochEnded) measure(epochEnded ? 'epoch' : 'checkpoint')
      if (o.checkpoint && checkpointDue) {
        const samplerState = next ? next.stateBefore : o.sampler.getState()
        const path = await writeCheckpoint(o.checkpoint.dir, o.encoder, this.optimizer, this.state(samplerState), o.checkpoint.keepLast)
        checkpoints.push(path)
        o.onCheckpoint?.(path, this.step)
      }
      if (epochEnded) await o.onEpochEnd?.(epoch)
      if (stopNow) {
        stoppedEarly = true
        break
      }
    }
    prefetcher.close()
    measure('end')
    return {
      steps: this.step,
      totalSteps: this.totalSteps,
      epochs: o.epochs,
      examples,
      tokens,
      seconds: (performance.now() - started) / 1000,
      ...lossWindows(this.history),
      history: this.history,
      checkpoints,
      stoppedEarly,
      probe: probeHistory.length ? {first: probeHistory[0], last: probeHistory.at(-1)!, history: probeHistory} : undefined,
      pipeline: {...prefetcher.stats, tokenizerThread},
    }
  }

  /** Measures the probe loss now (draws the probe batches on first use; `probe` option or the given one). */
  async probe(options: {batches: number; seed?: number} | undefined = this.o.probe): Promise<ProbeResult> {
    if (!options) throw new Error('no probe configured')
    this.probeSet ??= await this.probeBatches(options)
    return this.measureProbe(this.probeSet, 'start')
  }

  /**
   * Draws the probe batches once: per task, `batches` batches of that task's batch size, taking the
   * task's datasets in turn and each dataset's rows in a seeded shuffled order (no row twice until a
   * dataset is used up). Negatives and positives are chosen with per-batch seeds, so every
   * measurement sees exactly the same texts. Independent of the sampler and its RNG.
   */
  private async probeBatches(options: {batches: number; seed?: number}): Promise<ProbeBatch<B>[]> {
    if (!Number.isInteger(options.batches) || options.batches < 1) throw new Error(`probe batches must be a positive integer, got ${options.batches}`)
    const o = this.o
    const rng = new Rng(((options.seed ?? o.seed) ^ 0x5eed9b0b) >>> 0)
    const out: ProbeBatch<B>[] = []
    for (const task of ['ir', 'sts'] as const) {
      const members = o.datasets.map((d, i) => ({d, i})).filter(({d}) => d.task === task)
      if (members.length === 0 || !o.objectives[task]) continue
      const orders = members.map(({d}) => rng.shuffle(d.rows.map((_, r) => r)))
      const cursors = members.map(() => 0)
      for (let b = 0; b < options.batches; b++) {
        const m = b % members.length
        const order = orders[m]
        const size = Math.min(o.sampler.batchSize(task), order.length)
        const rows = Array.from({length: size}, (_, k) => order[(cursors[m] + k) % order.length])
        cursors[m] += size
        const seed = rng.seed()
        const prepared = await this.prepare({epoch: 0, index: 0, stateBefore: o.sampler.getState(), batch: {parts: [{dataset: members[m].i, rows}]}}, seed)
        out.push({part: prepared.parts[0], seed})
      }
    }
    return out
  }

  /** The objective on the probe batches in eval mode (no dropout), outside any gradient tape. */
  private measureProbe(probe: ProbeBatch<B>[], when: ProbeResult['when']): ProbeResult {
    const started = performance.now()
    const sums: Record<string, number> = {}
    const counts: Record<string, number> = {}
    const rows: Record<string, number> = {}
    const componentSums: Record<string, Record<string, number>> = {}
    for (const {part, seed} of probe) {
      const sink: ComponentSink = new Map()
      const value = tf.tidy(() => this.evalLoss(part, seed, sink))
      sums[part.task] = (sums[part.task] ?? 0) + readScalar(value)
      counts[part.task] = (counts[part.task] ?? 0) + 1
      rows[part.task] = (rows[part.task] ?? 0) + (part.task === 'ir' ? part.texts.queries.length : part.texts.texts1.length)
      addComponents(componentSums, part.task, sink)
    }
    const loss: Record<string, number> = {}
    for (const task of Object.keys(sums)) loss[task] = sums[task] / counts[task]
    return {
      type: 'probe',
      step: this.step,
      totalSteps: this.totalSteps,
      when,
      loss,
      components: meanComponents(componentSums, counts),
      batches: counts,
      rows,
      seconds: (performance.now() - started) / 1000,
    }
  }

  /** One batch part's objective without dropout; IR parts with GradCache are embedded chunk by chunk. */
  private evalLoss(part: PreparedPart<B>, seed: number, sink: ComponentSink): tf.Scalar {
    const chunkSize = part.task === 'ir' ? this.o.objectives.ir!.cacheChunkSize : undefined
    if (part.task !== 'ir' || !chunkSize) return this.partLoss(part, seed, false, sink)
    const embedAll = (batch: B) => tf.concat(sliceBatch(batch, chunkSize).map((chunk) => this.embed(chunk, seed, undefined, false).last), 0) as tf.Tensor2D
    return this.o.objectives.ir!.compute(
      {queries: embedAll(part.queries), passages: embedAll(part.passages), positives: part.texts.positives, negatives: part.texts.negatives},
      sink,
    )
  }

  dispose(): void {
    this.optimizer.dispose()
  }

  private state(sampler: SamplerState): TrainerState {
    const probe = this.o.probe ? {options: this.o.probe, history: this.probeHistory} : undefined
    return {version: 1, step: this.step, totalSteps: this.totalSteps, sampler, seed: this.o.seed, settings: this.o.settings, history: this.history, probe}
  }

  /** Every remaining batch of the run, with the sampler state that precedes it. */
  private *batchStream(): Generator<{epoch: number; index: number; stateBefore: SamplerState; batch: SamplerBatch}> {
    const sampler = this.o.sampler
    while (sampler.getState().epoch < this.o.epochs) {
      const stateBefore = sampler.getState()
      const batch = sampler.next()
      if (!batch) {
        sampler.nextEpoch()
        continue
      }
      yield {epoch: stateBefore.epoch, index: stateBefore.position, stateBefore, batch}
    }
  }

  /** Assembles texts and tokenizes them (async: the tokenizer may work off the main thread). */
  private async prepare(item: {epoch: number; index: number; stateBefore: SamplerState; batch: SamplerBatch}, seedOverride?: number): Promise<PreparedBatch<B>> {
    const o = this.o
    const seed = seedOverride ?? batchSeed(o.seed, item.epoch, item.index)
    const rng = new Rng(seed)
    const shape = {positives: o.objectives.ir?.positives ?? 1, negatives: o.objectives.ir?.negatives ?? 0}
    const parts: PreparedPart<B>[] = []
    let examples = 0
    let tokens = 0
    for (const part of item.batch.parts) {
      const texts = batchTexts(o.datasets, part, shape, o.instructions, rng)
      if (texts.task === 'ir') {
        if (!o.objectives.ir) throw new Error(`dataset ${o.datasets[part.dataset].name} is an IR dataset but no ir loss is configured`)
        const perQuery = texts.positives + texts.negatives
        const [queries, passages] = await Promise.all([
          this.tokenizeRows(texts.queries, {maxLength: o.maxLength.query, prefixes: texts.queryPrefixes}, part, 'query', (i) => i),
          this.tokenizeRows(texts.passages, {maxLength: o.maxLength.passage}, part, 'passage', (i) => Math.floor(i / perQuery)),
        ])
        parts.push({task: 'ir', texts, queries, passages})
        examples += texts.queries.length
        tokens += sum(queries.lengths) + sum(passages.lengths)
      } else {
        if (!o.objectives.sts) throw new Error(`dataset ${o.datasets[part.dataset].name} is an STS dataset but no sts loss is configured`)
        const [left, right] = await Promise.all([
          this.tokenizeRows(texts.texts1, {maxLength: o.maxLength.sts, prefixes: texts.prefixes1}, part, 'text1', (i) => i),
          this.tokenizeRows(texts.texts2, {maxLength: o.maxLength.sts, prefixes: texts.prefixes2}, part, 'text2', (i) => i),
        ])
        parts.push({task: 'sts', texts, left, right})
        examples += texts.texts1.length
        tokens += sum(left.lengths) + sum(right.lengths)
      }
    }
    return {epoch: item.epoch, index: item.index, stateBefore: item.stateBefore, seed, parts, examples, tokens}
  }

  /** Tokenizes one field of a batch part; a failure names the dataset, the row and the field. */
  private async tokenizeRows(texts: string[], options: {maxLength: number; prefixes?: string[]}, part: SamplerBatch['parts'][number], field: string, rowOf: (textIndex: number) => number): Promise<B> {
    try {
      return await this.o.encoder.tokenize(texts, options)
    } catch (error) {
      const e = error as Error & {index?: number}
      const dataset = this.o.datasets[part.dataset]
      if (typeof e.index !== 'number') throw new Error(`${dataset.path}: tokenizing a batch of ${dataset.name} failed: ${e.message}`, {cause: error})
      const rowIndex = part.rows[rowOf(e.index)]
      const id = dataset.rows[rowIndex]?.id
      throw new Error(`${dataset.path}: row ${rowIndex}${id !== undefined ? ` (id ${JSON.stringify(id)})` : ''}, ${field}: cannot tokenize: ${e.message}`, {cause: error})
    }
  }

  /** Accumulates gradients over the group, clips, and applies AdamW. Returns per-task mean losses. */
  private optimizerStep(group: PreparedBatch<B>[], lr: number): {loss: Record<string, number>; components: Record<string, Record<string, number>>; gradNorm: number} {
    const accumulated = new Map<string, tf.Tensor>()
    const lossSums: Record<string, number> = {}
    const lossCounts: Record<string, number> = {}
    const componentSums: Record<string, Record<string, number>> = {}
    const scale = 1 / group.length
    for (const batch of group) {
      batch.parts.forEach((part, partIndex) => {
        const sink: ComponentSink = new Map()
        const {value, grads} = this.partGradients(part, partSeed(batch.seed, partIndex), sink)
        lossSums[part.task] = (lossSums[part.task] ?? 0) + value
        lossCounts[part.task] = (lossCounts[part.task] ?? 0) + 1
        addComponents(componentSums, part.task, sink)
        for (const [name, g] of grads) {
          const scaled = tf.mul(g, scale)
          g.dispose()
          const previous = accumulated.get(name)
          if (previous) {
            accumulated.set(name, tf.add(previous, scaled))
            previous.dispose()
            scaled.dispose()
          } else accumulated.set(name, scaled)
        }
      })
    }
    const gradNorm = clipByGlobalNorm(accumulated, this.o.optimizer.maxGradNorm)
    this.optimizer.apply(accumulated, lr)
    for (const g of accumulated.values()) g.dispose()
    const loss: Record<string, number> = {}
    for (const task of Object.keys(lossSums)) loss[task] = lossSums[task] / lossCounts[task]
    return {loss, components: meanComponents(componentSums, lossCounts), gradNorm}
  }

  /** Loss and parameter gradients of one sampler batch, without updating anything (tests, diagnostics). */
  async gradientsOf(batch: SamplerBatch, epoch = 0, index = 0): Promise<{loss: number; grads: Map<string, tf.Tensor>}> {
    await ensureGradients()
    const prepared = await this.prepare({epoch, index, stateBefore: this.o.sampler.getState(), batch})
    let loss = 0
    const total = new Map<string, tf.Tensor>()
    prepared.parts.forEach((part, partIndex) => {
      const {value, grads} = this.partGradients(part, partSeed(prepared.seed, partIndex))
      loss += value
      for (const [name, g] of grads) {
        const previous = total.get(name)
        total.set(name, previous ? tf.add(previous, g) : g)
        if (previous) tf.dispose([previous, g])
      }
    })
    return {loss, grads: total}
  }

  private partGradients(part: PreparedPart<B>, seed: number, sink?: ComponentSink): {value: number; grads: Map<string, tf.Tensor>} {
    const chunkSize = part.task === 'ir' ? this.o.objectives.ir!.cacheChunkSize : undefined
    return chunkSize ? this.gradCacheIr(part as Extract<PreparedPart<B>, {task: 'ir'}>, seed, chunkSize, sink) : this.directGrads(part, seed, sink)
  }

  private directGrads(part: PreparedPart<B>, seed: number, sink?: ComponentSink): {value: number; grads: Map<string, tf.Tensor>} {
    const {value, grads} = variableGrads(() => this.partLoss(part, seed, this.o.dropout, sink), this.paramList)
    const out = this.byName(grads)
    const v = value.dataSync()[0]
    value.dispose()
    return {value: v, grads: out}
  }

  private byName(grads: tf.NamedTensorMap): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>()
    for (const [tfName, g] of Object.entries(grads)) out.set(this.nameOf.get(tfName) ?? tfName, g)
    return out
  }

  private embed(batch: B, seed: number, layer: number | undefined, training: boolean): {last: tf.Tensor2D; middle?: tf.Tensor2D} {
    const {lastHiddenState, hiddenStates} = this.o.encoder.forward(batch, {training, seed})
    const last = this.o.encoder.pool(lastHiddenState, batch, {normalize: true})
    const middle = layer === undefined ? undefined : this.o.encoder.pool(hiddenStates[layer], batch, {normalize: true})
    return {last, middle}
  }

  /** The objective of one batch part (inside variableGrads when training, inside tidy for probes). */
  private partLoss(part: PreparedPart<B>, seed: number, training: boolean, sink?: ComponentSink): tf.Scalar {
    if (part.task === 'ir') {
      const irBatch: IrEmbeddings = {
        queries: this.embed(part.queries, seed ^ 0x1, undefined, training).last,
        passages: this.embed(part.passages, seed ^ 0x2, undefined, training).last,
        positives: part.texts.positives,
        negatives: part.texts.negatives,
      }
      return this.o.objectives.ir!.compute(irBatch, sink)
    }
    const objective = this.o.objectives.sts!
    const layer = objective.needsMiddleLayer ? this.middleLayer : undefined
    const left = this.embed(part.left, seed ^ 0x1, layer, training)
    const right = this.embed(part.right, seed ^ 0x2, layer, training)
    const stsBatch: StsEmbeddings = {left: left.last, right: right.last, leftMiddle: left.middle, rightMiddle: right.middle, labels: part.texts.labels}
    return objective.compute(stsBatch, sink)
  }

  /**
   * GradCache for an IR part: (1) embed queries and passages chunk by chunk without recording
   * gradients; (2) compute the loss and its gradient w.r.t. the embeddings; (3) re-run every chunk
   * with the same dropout seed, back-propagating Σ(embedding · ∂L/∂embedding), and sum the
   * parameter gradients. Memory is bounded by one chunk's activations.
   */
  private gradCacheIr(part: Extract<PreparedPart<B>, {task: 'ir'}>, seed: number, chunkSize: number, sink?: ComponentSink): {value: number; grads: Map<string, tf.Tensor>} {
    const encoder = this.o.encoder
    const chunksOf = (batch: B, baseSeed: number) => sliceBatch(batch, chunkSize).map((chunk, c) => ({chunk, seed: (baseSeed + Math.imul(c + 1, 0x165667b1)) >>> 0}))
    const queryChunks = chunksOf(part.queries, seed ^ 0x1)
    const passageChunks = chunksOf(part.passages, seed ^ 0x2)
    const embedAll = (chunks: {chunk: B; seed: number}[]) =>
      tf.tidy(() => tf.concat(chunks.map(({chunk, seed: s}) => this.embed(chunk, s, undefined, this.o.dropout).last), 0) as tf.Tensor2D)
    const queries = embedAll(queryChunks)
    const passages = embedAll(passageChunks)
    const objective = this.o.objectives.ir!
    const {value, grads} = tf.valueAndGrads((q: tf.Tensor, p: tf.Tensor) =>
      objective.compute({queries: q as tf.Tensor2D, passages: p as tf.Tensor2D, positives: part.texts.positives, negatives: part.texts.negatives}, sink),
    )([queries, passages])
    tf.dispose([queries, passages])
    const total = new Map<string, tf.Tensor>()
    const backward = (chunks: {chunk: B; seed: number}[], embeddingGrads: tf.Tensor) => {
      let offset = 0
      for (const {chunk, seed: s} of chunks) {
        const rows = chunk.batchSize
        const upstream = tf.slice(embeddingGrads, [offset, 0], [rows, embeddingGrads.shape[1]!])
        offset += rows
        const {value: surrogate, grads: chunkGrads} = variableGrads(() => tf.sum(tf.mul(this.embed(chunk, s, undefined, this.o.dropout).last, upstream)) as tf.Scalar, this.paramList)
        surrogate.dispose()
        upstream.dispose()
        for (const [name, g] of this.byName(chunkGrads)) {
          const previous = total.get(name)
          if (previous) {
            total.set(name, tf.add(previous, g))
            previous.dispose()
            g.dispose()
          } else total.set(name, g)
        }
      }
    }
    backward(queryChunks, grads[0])
    backward(passageChunks, grads[1])
    const v = value.dataSync()[0]
    tf.dispose([value, ...grads])
    return {value: v, grads: total}
  }
}

/** Splits a token batch row-wise into chunks (views over the typed arrays, no copies of text). */
export function sliceBatch<B extends TokenBatchLike>(batch: B, chunkSize: number): B[] {
  if (batch.batchSize <= chunkSize) return [batch]
  const out: B[] = []
  for (let start = 0; start < batch.batchSize; start += chunkSize) out.push(sliceRows(batch, start, Math.min(batch.batchSize, start + chunkSize)))
  return out
}

/** Rows [start, end) of a token batch: every per-token array is sliced by rows, per-row arrays by index. */
export function sliceRows<B extends TokenBatchLike>(batch: B, start: number, end: number): B {
  const rows = batch.batchSize
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(batch)) {
    if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
      const typed = value as unknown as {length: number; subarray(a: number, b: number): unknown}
      const perRow = typed.length / rows
      out[key] = typed.subarray(start * perRow, end * perRow)
    } else if (Array.isArray(value) && value.length === rows) out[key] = value.slice(start, end)
    else out[key] = value
  }
  out.batchSize = end - start
  return out as B
}

/**
 * Runs `prepare` up to `depth` items ahead of the consumer, in order. Counts the items that were not
 * ready when asked for and the time spent waiting for them (with tokenization in a worker thread the
 * next batches are tokenized while the current step runs, so the loop should rarely wait).
 */
class Prefetcher<I, O> {
  private readonly queue: {promise: Promise<O>; ready: boolean}[] = []
  private done = false
  readonly stats = {batches: 0, notReady: 0, waitSeconds: 0}

  constructor(private readonly source: Iterator<I>, private readonly prepare: (item: I) => Promise<O>, private readonly depth: number) {
    this.fill()
  }

  private fill(): void {
    while (!this.done && this.queue.length < this.depth) {
      const item = this.source.next()
      if (item.done) {
        this.done = true
        break
      }
      const entry = {promise: this.prepare(item.value), ready: false}
      entry.promise.then(
        () => (entry.ready = true),
        () => {}, // surfaced when consumed
      )
      this.queue.push(entry)
    }
  }

  async next(): Promise<O | undefined> {
    const head = this.queue.shift()
    this.fill()
    if (!head) return undefined
    this.stats.batches++
    if (head.ready) return head.promise
    this.stats.notReady++
    const started = performance.now()
    try {
      return await head.promise
    } finally {
      this.stats.waitSeconds += (performance.now() - started) / 1000
    }
  }

  close(): void {
    this.done = true
    this.queue.length = 0
  }
}

function readScalar(t: tf.Tensor): number {
  const v = t.dataSync()[0]
  t.dispose()
  return v
}

/** Adds (and disposes) the component values of one batch part to per-task sums. */
function addComponents(sums: Record<string, Record<string, number>>, task: string, sink: ComponentSink): void {
  if (sink.size === 0) return
  const bucket = (sums[task] ??= {})
  for (const [name, value] of sink) bucket[name] = (bucket[name] ?? 0) + readScalar(value)
}

function meanComponents(sums: Record<string, Record<string, number>>, counts: Record<string, number>): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {}
  for (const [task, bucket] of Object.entries(sums)) out[task] = Object.fromEntries(Object.entries(bucket).map(([k, v]) => [k, v / counts[task]]))
  return out
}

function partSeed(batchSeed: number, partIndex: number): number {
  return (batchSeed + Math.imul(partIndex + 1, 0x27d4eb2f)) >>> 0
}

function sum(xs: number[]): number {
  let s = 0
  for (const x of xs) s += x
  return s
}

/**
 * Mean loss per task over the first and the last quarter (at least 1, at most 100 steps) of the
 * steps that had that task. Per-batch losses are noisy (mid-infonce only has anchors in some STS
 * batches), so short windows would compare noise.
 */
export function lossWindows(history: {step: number; loss: Record<string, number>}[]): {lossFirst: Record<string, number>; lossLast: Record<string, number>} {
  const lossFirst: Record<string, number> = {}
  const lossLast: Record<string, number> = {}
  const tasks = new Set(history.flatMap((h) => Object.keys(h.loss)))
  for (const task of tasks) {
    const values = history.filter((h) => task in h.loss).map((h) => h.loss[task])
    const window = Math.min(100, Math.max(1, Math.floor(values.length / 4)))
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    lossFirst[task] = mean(values.slice(0, window))
    lossLast[task] = mean(values.slice(-window))
  }
  return {lossFirst, lossLast}
}
