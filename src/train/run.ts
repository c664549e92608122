/**
 * `codiemb train` as a library call: resolve the `train` config section, load the prepared data,
 * build the losses and the sampler from the registry, plan the run (what `--dry-run` prints), and
 * train, checkpoint, validate and save the final model.
 */
import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {isAbsolute, join, resolve} from 'node:path'
import type {Registry} from '../registry/registry.js'
import type {IrLoss, LossModule, StsLoss, TrainingLoss} from './losses/types.js'
import type {Sampler, SamplerModule} from './samplers/types.js'
import {type InstructionOptions, type TrainingDataset, type TrainingDatasetSpec, instructionPrefix, loadTrainingDataset} from './data.js'
import {IrObjective, StsObjective, type TaskObjective, type WeightedLoss} from './objective.js'
import type {ProbeResult, StepEvent, TrainSummary} from './trainer.js'
import {CodiembError} from '../core/errors.js'

export class TrainConfigError extends CodiembError {
  override name = 'TrainConfigError'
}

type LossSpec = string | {name: string; weight?: number; options?: Record<string, unknown>}
type FileSpec = string | {path: string; name?: string; instruction?: string; limit?: number; pick?: 'first' | 'random'}

/** The `train` section (data-schemas/config/train.schema.json), as validated by the config loader. */
export interface TrainSection {
  model: string | {path: string} | {init: {arch: string; tokenizer: string; layers: number; hidden: number; heads: number; intermediate: number; maxPositions?: number; pooling?: 'cls' | 'mean' | 'last-token' | 'weighted-mean'; seed?: number}}
  pooling?: 'cls' | 'mean' | 'last-token' | 'weighted-mean'
  output: string
  dataDir?: string
  data: FileSpec[]
  tasks?: {ir?: {losses?: LossSpec[]; maxLength?: {query?: number; passage?: number}}; sts?: {losses?: LossSpec[]; maxLength?: number}}
  sampler?: {name: string; options?: Record<string, unknown>}
  epochs?: number
  learningRate?: number
  warmupRatio?: number
  warmupSteps?: number
  weightDecay?: number
  adamBetas?: [number, number]
  adamEpsilon?: number
  maxGradNorm?: number
  gradientAccumulation?: number
  seed?: number
  dropout?: boolean
  middleLayer?: number
  instructions?: Partial<InstructionOptions>
  prefetch?: number
  maxSteps?: number
  logEvery?: number
  checkpoint?: {dir?: string; everyEpoch?: boolean; everySteps?: number; keepLast?: number}
  validation?: {sts?: FileSpec[]; batchSize?: number; limit?: number}
  /** Fixed probe batches per task on which the objective is measured without dropout (before, at checkpoints/epochs, at the end). */
  probeLoss?: {batches: number; seed?: number}
}

export const DEFAULT_IR_LOSSES: LossSpec[] = [{name: 'ir-infonce'}]
export const DEFAULT_STS_LOSSES: LossSpec[] = [
  {name: 'mid-infonce', weight: 1},
  {name: 'pro', weight: 0.5},
  {name: 'pearson', weight: 2},
  {name: 'rank-kl', weight: 5},
]

export interface PlannedDataset {
  name: string
  task: 'ir' | 'sts'
  path: string
  rows: number
  droppedRows: number
  batchSize: number
  batchesPerEpoch: number
  /** Optimizer steps per epoch that include a batch of this dataset (= its batches when GA is 1). */
  stepsPerEpoch: number
}

export interface TrainPlan {
  sampler: {name: string; options: Record<string, unknown>}
  datasets: PlannedDataset[]
  batchesPerEpoch: number
  stepsPerEpoch: number
  /** Steps per epoch that contain each task. */
  stepsPerEpochByTask: Record<string, number>
  epochs: number
  totalSteps: number
  warmupSteps: number
  gradientAccumulation: number
  /** Rows per batch (per task) and per optimizer step. */
  examplesPerBatch: Record<string, number>
  examplesPerStep: Record<string, number>
  /** For a full IR batch: hard negatives of the query itself and in-batch candidates that are not its positive. */
  negativesPerQuery?: {hard: number; inBatch: number; total: number; positivesPerQuery: number}
  losses: Record<string, {name: string; weight: number; options: Record<string, unknown>}[]>
  droppedRows: number
}

/** Everything needed to train except the model. */
export interface TrainSetup {
  section: TrainSection
  datasets: TrainingDataset[]
  sampler: Sampler
  objectives: TaskObjective
  plan: TrainPlan
  seed: number
  settings: string
  instructions: InstructionOptions
}

const resolvePath = (base: string | undefined, p: string) => (isAbsolute(p) ? p : resolve(base ?? '.', p))

function fileSpec(spec: FileSpec, base: string | undefined): TrainingDatasetSpec {
  const s = typeof spec === 'string' ? {path: spec} : spec
  return {...s, path: resolvePath(base, s.path)}
}

async function buildLosses(registry: Registry, task: 'ir' | 'sts', specs: LossSpec[]): Promise<{terms: WeightedLoss[]; resolved: {name: string; weight: number; options: Record<string, unknown>}[]}> {
  const {Ajv} = await import('ajv')
  const ajv = new Ajv({strict: false, allErrors: true, useDefaults: false})
  const terms: WeightedLoss[] = []
  const resolved: {name: string; weight: number; options: Record<string, unknown>}[] = []
  for (const [i, raw] of specs.entries()) {
    const spec = typeof raw === 'string' ? {name: raw} : raw
    const where = `/train/tasks/${task}/losses/${i}`
    if (!registry.has('loss', spec.name)) {
      const known = registry.list('loss').map((e) => e.name)
      throw new TrainConfigError(`${where}/name: expected a registered loss (${known.join(', ')}), got ${JSON.stringify(spec.name)}`)
    }
    const entry = registry.entry('loss', spec.name)
    const lossTask = entry.meta?.task
    if (lossTask && lossTask !== task) throw new TrainConfigError(`${where}/name: loss "${spec.name}" is for the ${String(lossTask)} task, not ${task}`)
    const options = spec.options ?? {}
    if (entry.optionsSchema) {
      const validate = ajv.compile(entry.optionsSchema)
      if (!validate(options)) {
        const problems = (validate.errors ?? []).map((e) => `${where}/options${e.instancePath}: ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`)
        throw new TrainConfigError(`invalid options for loss "${spec.name}":\n  ${problems.join('\n  ')}`)
      }
    }
    const mod = (await entry.load()) as LossModule
    const loss: TrainingLoss = mod.create(options)
    if (loss.task !== task) throw new TrainConfigError(`${where}: loss "${spec.name}" computes a ${loss.task} loss, not ${task}`)
    const weight = spec.weight ?? 1
    terms.push({loss, weight})
    resolved.push({name: spec.name, weight, options})
  }
  return {terms, resolved}
}

/** A stable hash of the settings a resumed run must share with the run that wrote the checkpoint. */
export function settingsFingerprint(section: TrainSection, seed: number): string {
  const {model: _m, output: _o, maxSteps: _s, logEvery: _l, prefetch: _p, checkpoint: _c, validation: _v, probeLoss: _pl, ...rest} = section
  return createHash('sha256').update(JSON.stringify({...rest, seed})).digest('hex').slice(0, 16)
}

/** Loads data, losses and the sampler, and computes the plan. Touches no model. */
export async function setupTraining(section: TrainSection, registry: Registry, options: {defaultSeed?: number} = {}): Promise<TrainSetup> {
  const seed = section.seed ?? options.defaultSeed ?? 42
  const ir = await buildLosses(registry, 'ir', section.tasks?.ir?.losses ?? DEFAULT_IR_LOSSES)
  const sts = await buildLosses(registry, 'sts', section.tasks?.sts?.losses ?? DEFAULT_STS_LOSSES)
  const irObjective = new IrObjective(ir.terms as WeightedLoss<IrLoss>[])
  const stsObjective = new StsObjective(sts.terms as WeightedLoss<StsLoss>[])
  const datasets: TrainingDataset[] = []
  for (const spec of section.data) datasets.push(await loadTrainingDataset(fileSpec(spec, section.dataDir), irObjective.negatives, seed))
  const tasksPresent = new Set(datasets.map((d) => d.task))
  const objectives: TaskObjective = {ir: tasksPresent.has('ir') ? irObjective : undefined, sts: tasksPresent.has('sts') ? stsObjective : undefined}

  const samplerSpec = {name: section.sampler?.name ?? 'dynamic', options: section.sampler?.options ?? {}}
  if (!registry.has('sampler', samplerSpec.name)) {
    const known = registry.list('sampler').map((e) => e.name)
    throw new TrainConfigError(`/train/sampler/name: expected a registered sampler (${known.join(', ')}), got ${JSON.stringify(samplerSpec.name)}`)
  }
  const samplerEntry = registry.entry('sampler', samplerSpec.name)
  if (samplerEntry.optionsSchema) {
    const {Ajv} = await import('ajv')
    const validate = new Ajv({strict: false, allErrors: true}).compile(samplerEntry.optionsSchema)
    if (!validate(samplerSpec.options)) {
      const problems = (validate.errors ?? []).map((e) => `/train/sampler/options${e.instancePath}: ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`)
      throw new TrainConfigError(`invalid options for sampler "${samplerSpec.name}":\n  ${problems.join('\n  ')}`)
    }
  }
  for (const d of datasets) if (d.rows.length === 0) throw new TrainConfigError(`${d.path}: no usable rows (${d.dropped} dropped: IR rows need a positive and at least ${irObjective.negatives} negatives)`)
  const samplerModule = (await samplerEntry.load()) as SamplerModule
  const sampler = samplerModule.create(
    datasets.map((d) => ({name: d.name, task: d.task, size: d.rows.length})),
    samplerSpec.options,
    seed,
  )
  const instructions: InstructionOptions = {template: 'Instruction: {instruction} Query: ', queries: true, sts: true, ...section.instructions}
  const plan = computePlan(section, datasets, sampler, samplerSpec, {ir: ir.resolved, sts: sts.resolved}, irObjective)
  return {section, datasets, sampler, objectives, plan, seed, settings: settingsFingerprint(section, seed), instructions}
}

function computePlan(
  section: TrainSection,
  datasets: TrainingDataset[],
  sampler: Sampler,
  samplerSpec: {name: string; options: Record<string, unknown>},
  losses: Record<string, {name: string; weight: number; options: Record<string, unknown>}[]>,
  ir: IrObjective,
): TrainPlan {
  const ga = section.gradientAccumulation ?? 1
  const epochs = section.epochs ?? 1
  const batches = sampler.epochPlan()
  const stepsPerEpoch = Math.ceil(batches.length / ga)
  const totalSteps = stepsPerEpoch * epochs
  const perDataset = datasets.map(() => ({batches: 0, steps: new Set<number>()}))
  const stepsByTask: Record<string, Set<number>> = {}
  batches.forEach((b, i) => {
    for (const part of b.parts) {
      perDataset[part.dataset].batches++
      perDataset[part.dataset].steps.add(Math.floor(i / ga))
      const task = datasets[part.dataset].task
      ;(stepsByTask[task] ??= new Set()).add(Math.floor(i / ga))
    }
  })
  const examplesPerBatch: Record<string, number> = {}
  const examplesPerStep: Record<string, number> = {}
  for (const task of new Set(datasets.map((d) => d.task))) {
    examplesPerBatch[task] = sampler.batchSize(task)
    examplesPerStep[task] = sampler.batchSize(task) * ga
  }
  let negativesPerQuery: TrainPlan['negativesPerQuery']
  if (datasets.some((d) => d.task === 'ir')) {
    const B = sampler.batchSize('ir')
    const N = ir.negatives
    // Candidates per positive slot: B same-slot positives + B·N negatives; one is the target.
    negativesPerQuery = {hard: N, inBatch: (B - 1) * (N + 1), total: B * (N + 1) - 1, positivesPerQuery: ir.positives}
  }
  const warmupSteps = section.warmupSteps ?? Math.round((section.warmupRatio ?? 0.03) * totalSteps)
  return {
    sampler: samplerSpec,
    datasets: datasets.map((d, i) => ({
      name: d.name,
      task: d.task,
      path: d.path,
      rows: d.rows.length,
      droppedRows: d.dropped,
      batchSize: sampler.batchSize(d.task),
      batchesPerEpoch: perDataset[i].batches,
      stepsPerEpoch: perDataset[i].steps.size,
    })),
    batchesPerEpoch: batches.length,
    stepsPerEpoch,
    stepsPerEpochByTask: Object.fromEntries(Object.entries(stepsByTask).map(([k, v]) => [k, v.size])),
    epochs,
    totalSteps,
    warmupSteps,
    gradientAccumulation: ga,
    examplesPerBatch,
    examplesPerStep,
    negativesPerQuery,
    losses,
    droppedRows: datasets.reduce((a, d) => a + d.dropped, 0),
  }
}

export interface ValidationResult {
  epoch: number
  /** dataset name -> cosine Spearman × 100 */
  spearman: Record<string, number>
}

export interface TrainRunOptions {
  registry: Registry
  resume?: string
  defaultSeed?: number
  onPlan?: (plan: TrainPlan) => void
  onStep?: (event: StepEvent) => void
  onCheckpoint?: (path: string, step: number) => void
  onValidation?: (result: ValidationResult) => void
  onProbe?: (result: ProbeResult) => void
  onStatus?: (message: string) => void
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
  const setup = await setupTraining(section, options.registry, {defaultSeed: options.defaultSeed})
  options.onPlan?.(setup.plan)
  const {loadEncoder, initRandomEncoder} = await import('../model/encoder.js')
  const {Trainer} = await import('./trainer.js')
  const status = options.onStatus ?? (() => {})
  let encoder
  if (options.resume) {
    status(`loading checkpoint ${options.resume}`)
    encoder = await loadEncoder(options.resume, {registry: options.registry})
  } else if (typeof section.model === 'object' && 'init' in section.model) {
    const init = section.model.init
    status(`initialising a random ${init.arch} encoder (${init.layers} layers, hidden ${init.hidden})`)
    const {tokenizer, ...shape} = init
    encoder = await initRandomEncoder({...shape, tokenizerDir: tokenizer, seed: init.seed ?? setup.seed, registry: options.registry})
  } else {
    const path = typeof section.model === 'string' ? section.model : section.model.path
    if (!existsSync(path)) throw new TrainConfigError(`/train/model: model directory not found: ${path}`)
    status(`loading ${path}`)
    encoder = await loadEncoder(path, {registry: options.registry})
  }
  if (section.pooling && !options.resume) encoder.pooling = section.pooling
  const validationSets = await loadValidation(section)
  const validation: ValidationResult[] = []
  const validate = async (epoch: number) => {
    if (validationSets.length === 0) return
    const result = {epoch, spearman: await stsSpearman(encoder, validationSets, setup.instructions, section.validation?.batchSize ?? 64)}
    validation.push(result)
    options.onValidation?.(result)
  }
  if (!options.resume) await validate(0)
  // Beside the output, not inside it: the final save replaces the output directory as a whole.
  const checkpointDir = section.checkpoint?.dir ?? `${section.output.replace(/[\\/]+$/, '')}-checkpoints`
  const logEvery = section.logEvery ?? 1
  const trainer = new Trainer({
    encoder,
    datasets: setup.datasets,
    sampler: setup.sampler,
    objectives: setup.objectives,
    optimizer: {
      learningRate: section.learningRate ?? 1e-5,
      beta1: section.adamBetas?.[0] ?? 0.9,
      beta2: section.adamBetas?.[1] ?? 0.999,
      epsilon: section.adamEpsilon ?? 1e-8,
      weightDecay: section.weightDecay ?? 0,
      maxGradNorm: section.maxGradNorm ?? 1,
    },
    warmupRatio: section.warmupRatio ?? 0.03,
    warmupSteps: section.warmupSteps,
    epochs: section.epochs ?? 1,
    gradientAccumulation: section.gradientAccumulation ?? 1,
    seed: setup.seed,
    maxLength: {query: section.tasks?.ir?.maxLength?.query ?? 64, passage: section.tasks?.ir?.maxLength?.passage ?? 256, sts: section.tasks?.sts?.maxLength ?? 64},
    instructions: setup.instructions,
    middleLayer: section.middleLayer,
    dropout: section.dropout ?? true,
    checkpoint: {dir: checkpointDir, everyEpoch: section.checkpoint?.everyEpoch ?? true, everySteps: section.checkpoint?.everySteps ?? 0, keepLast: section.checkpoint?.keepLast ?? 2},
    prefetch: section.prefetch ?? 2,
    stopAfterSteps: section.maxSteps,
    settings: setup.settings,
    probe: section.probeLoss,
    onProbe: options.onProbe,
    onStep: (event) => {
      if (event.step % logEvery === 0 || event.step === event.totalSteps) options.onStep?.(event)
    },
    onEpochEnd: (epoch) => validate(epoch + 1),
    onCheckpoint: options.onCheckpoint,
  })
  if (options.resume) {
    const state = await trainer.resumeFrom(options.resume)
    status(`resumed at step ${state.step} of ${state.totalSteps}`)
  }
  const summary = await trainer.run()
  status(`saving the final model to ${section.output}`)
  await encoder.save(section.output, {
    extraFiles: {'codiemb_training.json': JSON.stringify({plan: setup.plan, summary: {...summary, history: undefined}, validation}, null, 1) + '\n'},
  })
  trainer.dispose()
  encoder.dispose()
  const {history: _h, ...rest} = summary
  return {output: section.output, plan: setup.plan, summary: rest, validation, resumedFrom: options.resume}
}

interface ValidationSet {
  name: string
  texts1: string[]
  texts2: string[]
  instruction: string
  gold: Float32Array
}

async function loadValidation(section: TrainSection): Promise<ValidationSet[]> {
  const specs = section.validation?.sts ?? []
  const {readAllRecords, readArrowMeta} = await import('../io/arrow-records.js')
  const out: ValidationSet[] = []
  for (const raw of specs) {
    const spec = fileSpec(raw, section.dataDir)
    if (!existsSync(spec.path)) throw new TrainConfigError(`/train/validation/sts: file not found: ${spec.path}`)
    const meta = await readArrowMeta(spec.path)
    let rows = await readAllRecords(spec.path, 'sts-pair')
    if (section.validation?.limit) rows = rows.slice(0, section.validation.limit)
    out.push({
      name: spec.name ?? meta.dataset ?? spec.path,
      texts1: rows.map((r) => r.text1),
      texts2: rows.map((r) => r.text2),
      instruction: spec.instruction ?? rows[0]?.instruction ?? '',
      gold: Float32Array.from(rows.map((r) => r.score)),
    })
  }
  return out
}

/** Cosine Spearman (× 100) of each validation set, with the training instruction template. */
export async function stsSpearman(
  encoder: {encode(texts: string[], options: {instruction?: string; batchSize?: number; normalize?: boolean}): Promise<Float32Array[]>},
  sets: ValidationSet[],
  instructions: InstructionOptions,
  batchSize: number,
): Promise<Record<string, number>> {
  const {stsScores} = await import('../eval/metrics.js')
  const out: Record<string, number> = {}
  for (const set of sets) {
    const instruction = instructions.sts ? instructionPrefix(instructions.template, set.instruction) : ''
    const a = await encoder.encode(set.texts1, {instruction, batchSize, normalize: true})
    const b = await encoder.encode(set.texts2, {instruction, batchSize, normalize: true})
    out[set.name] = stsScores(a, b, set.gold).cosine_spearman * 100
  }
  return out
}
