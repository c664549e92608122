/**
 * `codiemb train` as a library call: from a normalised `train` section (train/config.ts), set up
 * the data, losses, sampler and plan (train/setup.ts), load or initialise the model, and train,
 * checkpoint, validate and save the final model, reporting each part as a TrainEvent.
 */
import {existsSync} from 'node:fs'
import type {Registry} from '../registry/registry.js'
import {fillTemplate, type InstructionOptions, type Prompt} from '../core/prompts.js'
import {InterruptedError, stopIfAborted} from '../core/errors.js'
import {TrainConfigError, fileSpec, type TrainSection, type TrainSectionInput} from './config.js'
import type {TrainEvent, TrainSummary, ValidationEvent} from './events.js'
import type {TrainPlan} from './plan.js'
import {resumeSettings, setupTraining} from './setup.js'
import {closeTrainingData} from './data.js'
import {type MemoryTarget, type ProcessGroup, SINGLE_PROCESS, planTrainingMemory} from './memory-plan.js'
import type {DataParallel} from './distributed.js'

/** One STS validation (epoch 0: before training), as codiemb_training.json and the run result record it. */
export type ValidationResult = Omit<ValidationEvent, 'type'>

export interface TrainRunOptions {
  registry: Registry
  resume?: string
  defaultSeed?: number
  /**
   * The section as written in the configuration (before defaults were filled in), when there is
   * one: a checkpoint written before defaults were filled in, from a config that spells out default
   * values, carries a fingerprint of it, and resumes when the settings are the same.
   */
  asWritten?: TrainSectionInput
  /**
   * Progress, in order: the `plan` (before a model is loaded), `status` lines (loading, resuming,
   * saving), `validation` before training and after each epoch, `probe` measurements, `step` events
   * (every `logEvery`-th step and the last), a `checkpoint` event per checkpoint written, and
   * `interrupted` when `signal` stopped the run.
   */
  onEvent?: (event: TrainEvent) => void
  /** Warnings of the model load (e.g. checkpoint tensors the encoder does not use), once each. */
  onWarning?: (message: string) => void
  /**
   * Stop request (the CLI's, aborted on SIGINT/SIGTERM). While loading it is checked between
   * the parts; during training the trainer finishes its step, writes a checkpoint and reports an
   * `interrupted` event. Either way runTraining then rejects with an InterruptedError whose `data`
   * says where to resume: {step, totalSteps, checkpoint?}. The final model is not saved.
   */
  signal?: AbortSignal
  /**
   * The device to plan memory for (the plan's `memory`, and ir-infonce's `cache.chunkSize: auto`);
   * default: the active tensor backend and its device.
   */
  memoryTarget?: MemoryTarget
  /** The run's processes; `auto` settings are decided on rank 0 and broadcast. Default: this process alone (or `distributed`). */
  processGroup?: ProcessGroup
  /**
   * Data-parallel training over these ranks (train/distributed.ts): the configured batch sizes are
   * per process, every rank trains its shard of each global batch; rank 0 alone reports events,
   * validates, writes checkpoints and saves the model.
   */
  distributed?: DataParallel
  /**
   * Replace the checkpoints of an earlier run in the checkpoints folder (checkpointDirOf): they are
   * set aside before the first step (never mixed with this run's: a checkpoint's step count alone
   * cannot tell runs apart) and deleted once this run has written its first checkpoint; if the run
   * fails before, they are put back. Without it they stay where they are.
   */
  replaceCheckpoints?: boolean
}

/** Where the checkpoints of `section`'s run go: `checkpoint.dir`, else `<output>-checkpoints` (beside the output, not inside it: the final save replaces the output folder as a whole). */
export function checkpointDirOf(section: TrainSection): string {
  return section.checkpoint.dir ?? `${section.output.replace(/[\\/]+$/, '')}-checkpoints`
}

export interface TrainRunResult {
  output: string
  plan: TrainPlan
  summary: Omit<TrainSummary, 'history'>
  validation: ValidationResult[]
  resumedFrom?: string
}

/** Trains end to end and saves the final model to `section.output`. */
export async function runTraining(section: TrainSection, options: TrainRunOptions): Promise<TrainRunResult> {
  const dp = options.distributed
  if (dp) options = {...options, processGroup: options.processGroup ?? dp}
  const setup = await setupTraining(section, options.registry, {defaultSeed: options.defaultSeed, worldSize: dp?.size})
  try {
    return await trainWith(section, options, setup)
  } finally {
    await closeTrainingData(setup.datasets)
  }
}

async function trainWith(section: TrainSection, options: TrainRunOptions, setup: Awaited<ReturnType<typeof setupTraining>>): Promise<TrainRunResult> {
  const dp = options.distributed
  stopIfAborted(options.signal)
  if (dp && section.onNonFinite === 'skip-batch')
    throw new TrainConfigError('/train/onNonFinite: skip-batch is not supported in data-parallel runs (the ranks would skip different batches); use stop')
  const main = dp?.isMain ?? true
  // Other ranks report only the plan (what a command waits for before its progress starts).
  const report = main ? (options.onEvent ?? (() => {})) : (event: TrainEvent) => (event.type === 'plan' ? options.onEvent?.(event) : undefined)
  const status = (message: string) => report({type: 'status', message})
  // The plan carries the memory plan; what planning has to say follows it.
  const notes: string[] = []
  const chunkSize = await planRunMemory(section, setup, options, (note) => notes.push(note))
  report({type: 'plan', ...setup.plan})
  for (const note of notes) status(note)
  for (const d of setup.datasets) for (const message of d.warnings ?? []) report({type: 'warning', code: 'unverified-file', message, file: d.path})
  const {loadEncoder, initRandomEncoder} = await import('../model/encoder.js')
  const {Trainer} = await import('./trainer.js')
  let settings = setup.settings
  let settingsDetail: Record<string, unknown> | undefined = setup.settingsDetail
  if (options.resume) {
    // The checkpoint's state must fit this run before a weight of it is loaded (resume.ts).
    const [{readTrainerState}, {checkResumeState, dataIdentity}] = await Promise.all([import('./checkpoint.js'), import('./resume.js')])
    const state = readTrainerState(options.resume)
    ;(await import('./distributed.js')).checkWorldSize(state.worldSize, dp?.size ?? 1, options.resume)
    const resumed = resumeSettings(state.settings, setup, options.asWritten)
    if (resumed.earlier) status(`${options.resume} carries the settings fingerprint of an earlier codiemb (over the config as written); the settings are the same`)
    settings = resumed.settings
    if (resumed.earlier) settingsDetail = undefined
    const {totalSteps, stepsPerEpoch, batchesPerEpoch, gradientAccumulation, epochs} = setup.plan
    checkResumeState(state, options.resume, {
      totalSteps, stepsPerEpoch, batchesPerEpoch, gradientAccumulation, epochs,
      seed: setup.seed, settings, settingsDetail, data: dataIdentity(setup.datasets), sampler: setup.sampler,
    })
  }
  let encoder
  // train.model {path, isCausal}: the attention switch of decoder encoders, over config.json's.
  const isCausal = typeof section.model === 'object' && 'path' in section.model ? section.model.isCausal : undefined
  const configOverrides = isCausal === undefined ? undefined : {is_causal: isCausal}
  if (options.resume) {
    status(`loading checkpoint ${options.resume}`)
    encoder = await loadEncoder(options.resume, {registry: options.registry, onWarning: options.onWarning, configOverrides})
  } else if (typeof section.model === 'object' && 'init' in section.model) {
    const init = section.model.init
    status(`initialising a random ${init.arch} encoder (${init.layers} layers, hidden ${init.hidden})`)
    const {tokenizer, ...shape} = init
    encoder = await initRandomEncoder({...shape, tokenizerDir: tokenizer, seed: init.seed ?? setup.seed, registry: options.registry})
  } else {
    const path = typeof section.model === 'string' ? section.model : section.model.path
    if (!existsSync(path)) throw new TrainConfigError(`/train/model: model directory not found: ${path}`)
    status(`loading ${path}`)
    encoder = await loadEncoder(path, {registry: options.registry, onWarning: options.onWarning, configOverrides})
  }
  if (section.pooling && !options.resume) encoder.pooling = section.pooling
  if (section.lora && !encoder.lora) {
    if (!encoder.sourceDir) {
      encoder.dispose()
      throw new TrainConfigError('/train/lora: LoRA adapts a model directory (train.model: a path), not a randomly initialised model')
    }
    const {rank = 16, alpha = 32, dropout = 0, targetModules = 'all-linear'} = section.lora
    try {
      encoder.addLora({rank, alpha, dropout, targetModules}, setup.seed)
    } catch (error) {
      encoder.dispose()
      throw error
    }
    status(`LoRA: ${encoder.lora!.modules.length} adapted layers, rank ${rank}, ${[...encoder.variables.values()].reduce((n, v) => n + v.size, 0).toLocaleString('en')} trainable parameters; base weights frozen`)
  }
  const validationSets = await loadValidation(section)
  const validation: ValidationResult[] = []
  const validate = async (epoch: number) => {
    if (validationSets.length === 0) return
    const result = {epoch, spearman: await stsSpearman(encoder, validationSets, setup.instructions, section.validation.batchSize)}
    validation.push(result)
    report({type: 'validation', ...result})
  }
  if (options.signal?.aborted) encoder.dispose()
  stopIfAborted(options.signal)
  if (!options.resume && main) await validate(0)
  const checkpointDir = checkpointDirOf(section)
  let earlier: {count: number; discard(): void; restore(): void} | undefined
  const logEvery = section.logEvery
  const trainer = new Trainer({
    encoder,
    datasets: setup.datasets,
    sampler: dp ? new (await import('./distributed.js')).ShardedSampler(setup.sampler, dp.rank, dp.size, (i) => setup.datasets[i]?.name ?? `dataset ${i}`) : setup.sampler,
    objectives: setup.objectives,
    optimizer: {
      learningRate: section.learningRate,
      beta1: section.adamBetas[0],
      beta2: section.adamBetas[1],
      epsilon: section.adamEpsilon,
      weightDecay: section.weightDecay,
      maxGradNorm: section.maxGradNorm,
    },
    warmupRatio: section.warmupRatio,
    warmupSteps: section.warmupSteps,
    epochs: section.epochs,
    gradientAccumulation: section.gradientAccumulation,
    seed: setup.seed,
    maxLength: {query: section.tasks.ir.maxLength.query, passage: section.tasks.ir.maxLength.passage, sts: section.tasks.sts.maxLength},
    instructions: setup.instructions,
    middleLayer: section.middleLayer,
    dropout: section.dropout,
    gradientCheckpointing: section.gradientCheckpointing,
    gradCacheChunkSize: chunkSize,
    checkpoint: main ? {dir: checkpointDir, everyEpoch: section.checkpoint.everyEpoch, everySteps: section.checkpoint.everySteps, keepLast: section.checkpoint.keepLast} : undefined,
    prefetch: section.prefetch,
    stopAfterSteps: section.maxSteps,
    settings,
    settingsDetail,
    onNonFinite: section.onNonFinite,
    probe: main ? section.probeLoss : undefined,
    onEvent: (event) => {
      if (event.type === 'checkpoint') earlier?.discard()
      if (event.type !== 'step' || event.step % logEvery === 0 || event.step === event.totalSteps) report(event)
    },
    onEpochEnd: (epoch) => (main ? validate(epoch + 1) : undefined),
    signal: options.signal,
    ...(dp ? {distributed: dp, agreeToStop: (requested: boolean) => dp.agreeToStop(requested)} : {}),
  })
  if (options.resume) {
    const state = await trainer.resumeFrom(options.resume)
    status(`resumed at step ${state.step} of ${state.totalSteps}`)
  } else if (options.replaceCheckpoints && main) {
    const {setCheckpointsAside} = await import('./checkpoint.js')
    earlier = setCheckpointsAside(checkpointDir)
    if (earlier.count) status(`replacing ${earlier.count} checkpoint(s) of an earlier run in ${checkpointDir} (deleted once this run writes one)`)
  }
  let summary
  try {
    summary = await trainer.run()
  } catch (error) {
    earlier?.restore()
    throw error
  }
  if (summary.interrupted) {
    // An earlier run's checkpoints come back unless this run wrote one of its own to resume from.
    if (summary.interrupted.checkpoint && summary.checkpoints.length) earlier?.discard()
    else earlier?.restore()
    trainer.dispose()
    encoder.dispose()
    const {signal, checkpoint} = summary.interrupted
    const where = `at step ${summary.steps} of ${summary.totalSteps}`
    throw new InterruptedError(signal, checkpoint ? `interrupted by ${signal} ${where}; resume with --resume ${checkpoint}` : `interrupted by ${signal} ${where}: no step was done, nothing to resume from`, {
      data: {step: summary.steps, totalSteps: summary.totalSteps, ...(checkpoint ? {checkpoint} : {})},
    })
  }
  earlier?.discard()
  if (main) {
    status(`saving the final model to ${section.output}`)
    await encoder.save(section.output, {
      outputOf: 'train',
      extraFiles: {'codiemb_training.json': JSON.stringify({plan: setup.plan, summary: {...summary, history: undefined}, validation}, null, 1) + '\n'},
    })
  }
  trainer.dispose()
  encoder.dispose()
  const {history: _h, ...rest} = summary
  return {output: section.output, plan: setup.plan, summary: rest, validation, resumedFrom: options.resume}
}

/**
 * Adds the memory plan to setup.plan (for the active backend unless options name a target) and
 * returns the GradCache chunk size the trainer uses when ir-infonce's `cache.chunkSize` is `auto`:
 * a resumed run's recorded one, else the plan's, decided on rank 0 and broadcast. A plan that
 * cannot be made (an architecture without an activation profile, an unreadable model) is reported
 * as a status line, unless `auto` needs it.
 */
async function planRunMemory(
  section: TrainSection,
  setup: Awaited<ReturnType<typeof setupTraining>>,
  options: TrainRunOptions,
  note: (message: string) => void,
): Promise<number | undefined> {
  const auto = setup.objectives.ir?.cacheChunkSize === 'auto'
  const group = options.processGroup ?? SINGLE_PROCESS
  let resolved: number | undefined
  if (group.rank === 0) {
    try {
      const tf = await import('@tensorflow/tfjs-core')
      const active = (tf.backend() as {device?: unknown}).device
      const target = options.memoryTarget ?? {backend: tf.getBackend(), device: typeof active === 'string' ? active : undefined}
      const memory = await planTrainingMemory(setup, options.resume ?? section.model, options.registry, target)
      setup.plan.memory = memory
      for (const warning of memory.warnings) note(`memory: ${warning}`)
      resolved = memory.autoChunkSize
    } catch (error) {
      if (auto && !options.resume) throw new TrainConfigError(`ir-infonce cache.chunkSize auto needs a memory plan, which failed: ${(error as Error).message}`)
      note(`memory plan unavailable: ${(error as Error).message}`)
    }
  }
  if (options.resume) {
    const {readTrainerState} = await import('./checkpoint.js')
    return readTrainerState(options.resume).gradCacheChunkSize
  }
  if (!auto) return undefined
  resolved = await group.broadcast(resolved)
  if (resolved === undefined) throw new TrainConfigError('ir-infonce cache.chunkSize auto: the device memory is unknown (see the memory warnings); set a number, or pass --device-memory')
  note(`ir-infonce cache.chunkSize auto → ${resolved}`)
  return resolved
}

interface ValidationSet {
  name: string
  texts1: string[]
  texts2: string[]
  instruction: string
  gold: Float32Array
}

async function loadValidation(section: TrainSection): Promise<ValidationSet[]> {
  const specs = section.validation.sts ?? []
  // Checked like training files (data-file.ts): a NaN gold score would make every Spearman NaN.
  const {readTrainingFile} = await import('./data-file.js')
  const out: ValidationSet[] = []
  for (const raw of specs) {
    const spec = fileSpec(raw, section.dataDir)
    if (!existsSync(spec.path)) throw new TrainConfigError(`/train/validation/sts: file not found: ${spec.path}`)
    const file = await readTrainingFile(spec.path, 0)
    if (file.kind !== 'sts-pair') throw new TrainConfigError(`/train/validation/sts: ${spec.path}: expected an "sts-pair" record file, got "${file.kind}"`)
    let rows = file.rows
    if (section.validation.limit) rows = rows.slice(0, section.validation.limit)
    out.push({
      name: spec.name ?? file.dataset ?? spec.path,
      texts1: rows.map((r) => r.text1),
      texts2: rows.map((r) => r.text2),
      instruction: spec.instruction ?? rows[0]?.instruction ?? '',
      gold: Float32Array.from(rows.map((r) => r.score)),
    })
  }
  return out
}

/**
 * Cosine Spearman (× 100) of each validation set. Its texts get the prompt training gives STS
 * pairs (the set's instruction in the training template, when `instructions.sts`), so validation
 * measures the inputs the model is trained on.
 */
export async function stsSpearman(
  encoder: {encode(texts: string[], options: {instruction?: Prompt; batchSize?: number; normalize?: boolean}): Promise<Float32Array[]>},
  sets: ValidationSet[],
  instructions: InstructionOptions,
  batchSize: number,
): Promise<Record<string, number>> {
  const {stsScores} = await import('../eval/metrics.js')
  const out: Record<string, number> = {}
  for (const set of sets) {
    const prompt = fillTemplate(instructions.template, instructions.sts ? set.instruction : '')
    const a = await encoder.encode(set.texts1, {instruction: prompt, batchSize, normalize: true})
    const b = await encoder.encode(set.texts2, {instruction: prompt, batchSize, normalize: true})
    out[set.name] = stsScores(a, b, set.gold).cosine_spearman * 100
  }
  return out
}
