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
 *
 * Around the loop: batch.ts prepares batches, prefetch.ts runs that ahead of the step, part-loss.ts
 * a part's objective and gradients (gradcache.ts: GradCache), probe.ts the probe loss, tally.ts means.
 */
import * as tf from '@tensorflow/tfjs-core'
import {interruptionOf} from '../core/errors.js'
import type {Sampler, SamplerBatch, SamplerState} from './samplers/types.js'
import {batchesPerEpoch} from './samplers/outline.js'
import {type BatchItem, type PreparedBatch, partSeed, prepareBatch} from './batch.js'
import {CheckpointError, type TrainerState, readOptimizerState, readTrainerState, removePartialCheckpoints, writeCheckpoint} from './checkpoint.js'
import {checkOptimizerState, checkResumeState, dataIdentity} from './resume.js'
import {type InstructionOptions, type TrainingDataset, batchSeed} from './data.js'
import {NonFiniteError, type NonFiniteSite, type OnNonFinite, firstNonFinite, handleNonFinite, lastCheckpointText, siteOf} from './finite.js'
import {accumulateGradients, ensureGradients} from './gradients.js'
import {type DataParallel, checkWorldSize} from './distributed.js'
import type {ComponentSink, TaskObjective} from './objective.js'
import {AdamW, type AdamWOptions, clipByGlobalNorm, learningRateAt} from './optimizer.js'
import {PartLoss} from './part-loss.js'
import {Prefetcher} from './prefetch.js'
import {type ProbeBatch, type ProbeOptions, drawProbeBatches, measureProbe} from './probe.js'
import {LossTally, lossWindows} from './tally.js'
import type {TokenBatchLike, TrainableEncoder} from './types.js'
import type {ProbeResult, TrainEvent, TrainSummary} from './events.js'

export type {CheckpointEvent, ProbeResult, StepEvent, TrainEvent, TrainSummary} from './events.js'

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
  /** Activation checkpointing: recompute each encoder layer in backward (same gradients, less memory). */
  gradientCheckpointing?: boolean
  /** The GradCache chunk size an IR objective configured as `auto` resolved to (see src/train/memory-plan.ts). */
  gradCacheChunkSize?: number
  checkpoint?: {dir: string; everyEpoch: boolean; everySteps: number; keepLast: number}
  /** Batches tokenized ahead of the step being computed. */
  prefetch: number
  /**
   * Fixed probe batches per task (drawn once, seeded, from the training data) on which the full
   * objective is measured in eval mode before the first step, after every checkpoint and epoch, and
   * at the end: a training-loss curve free of batch-composition noise.
   */
  probe?: ProbeOptions
  /** Tokenize in a worker thread when the encoder's tokenizer would otherwise run on the main thread (default true). */
  tokenizeInWorker?: boolean
  /** Stop after this many optimizer steps in this process (tests, time-boxed runs); a checkpoint is written first if checkpointing. */
  stopAfterSteps?: number
  /**
   * A stop request (the CLI aborts it on SIGINT/SIGTERM), checked between optimizer steps: the
   * step under way is finished, a checkpoint of it written (when checkpointing and not written
   * yet), an `interrupted` event reported, and run() returns with `interrupted` set.
   */
  signal?: AbortSignal
  /** How the ranks agree on the step to stop at (every rank calls it at each step boundary); default: this process's `signal`. */
  agreeToStop?: (requested: boolean, step: number) => boolean | Promise<boolean>
  /** Data-parallel training (distributed.ts): parameters broadcast at start, gradients averaged over the ranks, step totals reduced. */
  distributed?: DataParallel
  /**
   * Progress, as it happens: a `step` event after every optimizer step, each `probe` measurement,
   * and a `checkpoint` event once a checkpoint directory is complete. Not awaited: an observer
   * cannot hold training up.
   */
  onEvent?: (event: TrainEvent) => void
  /**
   * Called after the last step of each epoch (and its probe and checkpoint), and awaited before
   * training goes on: the hook for work on the epoch's final weights, such as validation, which
   * must finish before the next step changes them. A control point, not progress, so not an event.
   */
  onEpochEnd?: (epoch: number) => Promise<void> | void
  /** Fingerprint of the settings; a resume under different settings is refused. */
  settings: string
  /** The settings `settings` is the fingerprint of (setup.ts settingsDetail), recorded in checkpoints so a refused resume names what differs. */
  settingsDetail?: Record<string, unknown>
  /**
   * A NaN or infinite loss or gradient in a batch: `stop` the run (NonFiniteError naming the step,
   * task, dataset and rows; nothing of the step is applied) or `skip-batch` (leave the batch out of
   * its step and report a `warning` event). Default stop. Non-finite weights always stop the run.
   */
  onNonFinite?: OnNonFinite
}

export class Trainer<B extends TokenBatchLike = TokenBatchLike> {
  private readonly optimizer: AdamW
  private readonly partLoss: PartLoss<B>
  private readonly batchesPerEpoch: number
  readonly stepsPerEpoch: number
  readonly totalSteps: number
  readonly warmupSteps: number
  private step = 0
  private history: {step: number; loss: Record<string, number>}[] = []
  private probeSet?: ProbeBatch<B>[]
  /** Probe measurements of the whole run, kept in checkpoints so a resumed run reports from step 0. */
  private probeHistory: ProbeResult[] = []
  /** The checkpoint this run resumed from: it holds every step done until this run does one. */
  private resumedFrom?: string
  /** The newest checkpoint of this run (or the one it resumed from): where a stopped run can resume. */
  private lastCheckpoint?: {path: string; step: number}
  /** Batches left out of their step for a non-finite loss or gradient (onNonFinite: skip-batch). */
  private skippedBatches = 0

  constructor(private readonly o: TrainerOptions<B>) {
    this.partLoss = new PartLoss(o.encoder, o.objectives, {
      middleLayer: o.middleLayer,
      dropout: o.dropout,
      checkpointLayers: o.gradientCheckpointing,
      chunkSize: o.gradCacheChunkSize, collectives: o.distributed?.group,
    })
    this.optimizer = new AdamW(o.encoder.variables, o.optimizer)
    this.batchesPerEpoch = batchesPerEpoch(o.sampler) // no plan built (closed form for the built-in samplers)
    this.stepsPerEpoch = Math.ceil(this.batchesPerEpoch / o.gradientAccumulation)
    this.totalSteps = this.stepsPerEpoch * o.epochs
    this.warmupSteps = o.warmupSteps ?? Math.round(o.warmupRatio * this.totalSteps)
  }

  /**
   * Restores optimizer moments, step, sampler position and history from a checkpoint directory,
   * after checking that its state fits this run (resume.ts): a CheckpointError otherwise.
   */
  async resumeFrom(dir: string): Promise<TrainerState> {
    const state = readTrainerState(dir)
    const o = this.o
    checkResumeState(state, dir, {
      totalSteps: this.totalSteps,
      stepsPerEpoch: this.stepsPerEpoch,
      batchesPerEpoch: this.batchesPerEpoch,
      gradientAccumulation: o.gradientAccumulation,
      epochs: o.epochs,
      seed: o.seed,
      settings: o.settings,
      settingsDetail: o.settingsDetail,
      data: dataIdentity(o.datasets),
    })
    // Checkpoints written before the chunk size was recorded carry none; their fingerprint covers a numeric one.
    if (state.gradCacheChunkSize !== undefined && state.gradCacheChunkSize !== this.partLoss.chunkSize)
      throw new CheckpointError(`${dir}: checkpoint was trained with GradCache chunk size ${state.gradCacheChunkSize}, this run would use ${this.partLoss.chunkSize ?? 'none'} (chunks decide dropout seeds)`)
    const moments = await readOptimizerState(dir)
    checkOptimizerState(moments, o.encoder.variables, state.step, dir)
    checkWorldSize(state.worldSize, o.distributed?.size ?? 1, dir)
    this.optimizer.importState(moments.step, moments.tensors)
    this.o.sampler.setState(state.sampler)
    this.step = state.step
    this.resumedFrom = dir
    this.history = state.history
    // Earlier probe measurements count only if they were taken on the same probe batches.
    const sameProbe = JSON.stringify(state.probe?.options ?? null) === JSON.stringify(this.o.probe ?? null)
    this.probeHistory = sameProbe ? [...(state.probe?.history ?? [])] : []
    this.lastCheckpoint = {path: dir, step: state.step}
    return state
  }

  async run(): Promise<TrainSummary> {
    await ensureGradients()
    const o = this.o
    await o.distributed?.syncParameters(o.encoder.variables)
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
    if (o.probe) this.probeSet ??= await drawProbeBatches(o.probe, o)
    const probeBatches = this.probeSet
    const probeHistory = this.probeHistory
    const measure = (when: ProbeResult['when']) => {
      if (!probeBatches || probeHistory.at(-1)?.step === this.step) return
      const result = measureProbe(probeBatches, this.partLoss, {step: this.step, totalSteps: this.totalSteps, when})
      probeHistory.push(result)
      o.onEvent?.(result)
    }
    measure('start')
    const batches = this.batchStream()
    const prefetcher = new Prefetcher(batches, (item) => this.prepare(item), Math.max(1, o.prefetch))
    try {
      return await this.steps(prefetcher, measure, tokenizerThread)
    } finally {
      prefetcher.close()
    }
  }

  /** The optimizer steps of the run, until the plan or `stopAfterSteps` ends it; then the summary. */
  private async steps(
    prefetcher: Prefetcher<BatchItem, PreparedBatch<B>>,
    measure: (when: ProbeResult['when']) => void,
    tokenizerThread: 'worker' | 'caller',
  ): Promise<TrainSummary> {
    const o = this.o
    const probeHistory = this.probeHistory
    const started = performance.now()
    let examples = 0
    let tokens = 0
    let stepsThisRun = 0
    const checkpoints: string[] = []
    // The latest checkpoint holding this run's steps so far, and its step.
    let checkpointed = this.resumedFrom
    let checkpointedStep = this.resumedFrom === undefined ? undefined : this.step
    let stoppedEarly = false
    let interrupted: TrainSummary['interrupted']
    let next = await prefetcher.next()
    const saveCheckpoint = async (checkpoint: NonNullable<TrainerOptions['checkpoint']>) => {
      const samplerState = next ? next.stateBefore : o.sampler.getState()
      const path = await writeCheckpoint(checkpoint.dir, o.encoder, this.optimizer, this.state(samplerState), checkpoint.keepLast, this.resumedFrom)
      checkpoints.push(path)
      checkpointed = path
      checkpointedStep = this.step
      this.lastCheckpoint = {path, step: this.step}
      o.onEvent?.({type: 'checkpoint', path, step: this.step})
    }
    while (next && this.step < this.totalSteps) {
      const requested = o.signal?.aborted ?? false
      if (o.agreeToStop ? await o.agreeToStop(requested, this.step) : requested) {
        // A checkpoint of this step, unless there is one (written at this step, or the one resumed
        // from when this run did no step yet; a fresh run stopped before its first step has nothing to keep).
        if (o.checkpoint && stepsThisRun > 0 && checkpointedStep !== this.step) {
          measure('checkpoint')
          await saveCheckpoint(o.checkpoint)
        }
        const signal = o.signal?.aborted ? interruptionOf(o.signal).signal : 'SIGINT'
        const holding = checkpointedStep === this.step && checkpointed ? {checkpoint: checkpointed} : {}
        interrupted = {signal, ...holding}
        o.onEvent?.({type: 'interrupted', signal, step: this.step, totalSteps: this.totalSteps, ...holding})
        break
      }
      const epoch = next.epoch
      // The batches of this optimizer step: up to GA, never crossing an epoch boundary.
      const group: PreparedBatch<B>[] = []
      while (next && next.epoch === epoch && group.length < o.gradientAccumulation) {
        group.push(next)
        next = await prefetcher.next()
      }
      const lr = learningRateAt(this.step, {learningRate: o.optimizer.learningRate, warmupSteps: this.warmupSteps, totalSteps: this.totalSteps})
      const local = {...(await this.optimizerStep(group, lr, epoch)), examples: group.reduce((a, b) => a + b.examples, 0), tokens: group.reduce((a, b) => a + b.tokens, 0)}
      const {loss, components, gradNorm, examples: stepExamples, tokens: stepTokens} = o.distributed ? {...local, ...(await o.distributed.stepTotals(local))} : local
      this.step++
      stepsThisRun++
      examples += stepExamples
      tokens += stepTokens
      this.history.push({step: this.step, loss})
      const elapsed = (performance.now() - started) / 1000
      o.onEvent?.({
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
      if (o.checkpoint && checkpointDue) await saveCheckpoint(o.checkpoint)
      if (epochEnded) await o.onEpochEnd?.(epoch)
      if (stopNow) {
        stoppedEarly = true
        break
      }
    }
    prefetcher.close()
    if (!interrupted) measure('end')
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
      ...(interrupted ? {interrupted} : {}),
      skippedBatches: this.skippedBatches,
      probe: probeHistory.length ? {first: probeHistory[0], last: probeHistory.at(-1)!, history: probeHistory} : undefined,
      pipeline: {...prefetcher.stats, tokenizerThread},
    }
  }

  /** Measures the probe loss now (draws the probe batches on first use; `probe` option or the given one). */
  async probe(options: ProbeOptions | undefined = this.o.probe): Promise<ProbeResult> {
    if (!options) throw new Error('no probe configured')
    this.probeSet ??= await drawProbeBatches(options, this.o)
    return measureProbe(this.probeSet, this.partLoss, {step: this.step, totalSteps: this.totalSteps, when: 'start'})
  }

  dispose(): void {
    this.optimizer.dispose()
  }

  private state(sampler: SamplerState): TrainerState {
    const probe = this.o.probe ? {options: this.o.probe, history: this.probeHistory} : undefined
    const o = this.o
    return {
      version: 1,
      step: this.step,
      totalSteps: this.totalSteps,
      sampler,
      seed: o.seed,
      settings: o.settings,
      ...(o.settingsDetail ? {settingsDetail: o.settingsDetail} : {}),
      history: this.history,
      probe,
      data: dataIdentity(o.datasets),
      gradCacheChunkSize: this.partLoss.chunkSize,
      ...(o.distributed ? {worldSize: o.distributed.size} : {}),
    }
  }

  /** Every remaining batch of the run, with the sampler state that precedes it. */
  private *batchStream(): Generator<BatchItem> {
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

  /** Assembles and tokenizes a batch with its seed from (seed, epoch, index). */
  private prepare(item: BatchItem): Promise<PreparedBatch<B>> {
    const seed = batchSeed(this.o.seed, item.epoch, item.index)
    return prepareBatch(this.o, item, this.o.distributed?.seedOf(seed) ?? seed)
  }

  /**
   * One optimizer step over the group of batches: g = Σ_batches Σ_parts ∇L_part / |group|, clipped
   * to the global norm maxGradNorm, then AdamW at learning rate `lr`. Returns per-task mean losses
   * and loss terms over the group's parts, and the norm before clipping.
   *
   * Each part's loss and gradients are checked before they count (finite.ts): a non-finite one
   * stops the run before anything of the step is applied, or, with onNonFinite skip-batch, its
   * batch is left out (g then averages the batches kept; with none kept, no update is applied).
   * The weights are checked after the update.
   */
  private async optimizerStep(group: PreparedBatch<B>[], lr: number, epoch: number): Promise<{loss: Record<string, number>; components: Record<string, Record<string, number>>; gradNorm: number}> {
    const accumulated = new Map<string, tf.Tensor>()
    const tally = new LossTally()
    const scale = 1 / group.length
    let kept = 0
    try {
      for (const batch of group) {
        const batchGrads = new Map<string, tf.Tensor>()
        const values: [task: string, value: number, sink: ComponentSink][] = []
        let site: NonFiniteSite | undefined
        for (const [partIndex, part] of batch.parts.entries()) {
          const sink: ComponentSink = new Map()
          const {value, grads} = this.partLoss.gradients(part, partSeed(batch.seed, partIndex), sink)
          const tensor = Number.isFinite(value) ? firstNonFinite(grads) : undefined
          if (!Number.isFinite(value) || tensor !== undefined) {
            tf.dispose([...grads.values(), ...sink.values()])
            site = siteOf(batch, partIndex, {step: this.step + 1, totalSteps: this.totalSteps, epoch, datasets: this.o.datasets}, Number.isFinite(value) ? `gradient of ${tensor}` : `loss (${value})`)
            break
          }
          values.push([part.task, value, sink])
          accumulateGradients(batchGrads, grads, scale)
        }
        if (site) {
          tf.dispose([...batchGrads.values(), ...values.flatMap(([, , sink]) => [...sink.values()])])
          handleNonFinite(site, this.o.onNonFinite ?? 'stop', this.lastCheckpoint, this.o.onEvent)
          this.skippedBatches++
          continue
        }
        for (const [task, value, sink] of values) tally.add(task, value, sink)
        accumulateGradients(accumulated, batchGrads)
        kept++
      }
      if (kept === 0) return {loss: {}, components: {}, gradNorm: 0}
      if (kept < group.length)
        for (const [name, g] of accumulated) {
          accumulated.set(name, tf.mul(g, group.length / kept))
          g.dispose()
        }
      await this.o.distributed?.averageGradients(accumulated, this.o.encoder.variables)
      const gradNorm = clipByGlobalNorm(accumulated, this.o.optimizer.maxGradNorm)
      this.optimizer.apply(accumulated, lr)
      const broken = firstNonFinite(this.o.encoder.variables)
      if (broken !== undefined)
        throw new NonFiniteError(
          `step ${this.step + 1} of ${this.totalSteps} made weight ${broken} non-finite (gradient norm ${gradNorm} before clipping; is the learning rate ${lr} too high?); ` +
            `training stopped and no checkpoint was written from these weights. ${lastCheckpointText(this.lastCheckpoint)}`,
        )
      return {loss: tally.means(), components: tally.componentMeans(), gradNorm}
    } finally {
      for (const g of accumulated.values()) g.dispose()
    }
  }

  /** Loss and parameter gradients of one sampler batch (summed over its parts), without updating anything (tests, diagnostics). */
  async gradientsOf(batch: SamplerBatch, epoch = 0, index = 0): Promise<{loss: number; grads: Map<string, tf.Tensor>}> {
    await ensureGradients()
    const prepared = await this.prepare({epoch, index, stateBefore: this.o.sampler.getState(), batch})
    let loss = 0
    const total = new Map<string, tf.Tensor>()
    prepared.parts.forEach((part, partIndex) => {
      const {value, grads} = this.partLoss.gradients(part, partSeed(prepared.seed, partIndex))
      loss += value
      accumulateGradients(total, grads)
    })
    return {loss, grads: total}
  }
}
