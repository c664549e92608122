/**
 * Everything a training run needs except the model: each task's losses and the sampler, built from
 * the registry with their options checked against the entries' schemas (and their defaults filled
 * in), the loaded datasets, the plan, and the settings fingerprint a resume is checked against.
 */
import {createHash} from 'node:crypto'
import {validateOptions, withoutDefaults} from '../config/validate.js'
import type {Registry} from '../registry/registry.js'
import {TrainConfigError, fileSpec, trainSectionSchema, type LossSpec, type TrainSection, type TrainSectionInput} from './config.js'
import {type InstructionOptions, type TrainingDataset, closeTrainingData, loadTrainingDataset} from './data.js'
import {PAPER_STS_WEIGHTS, STS_TERM_LOSSES} from './losses/codiemb-sts.js'
import type {IrLoss, LossModule, StsLoss, TrainingLoss} from './losses/types.js'
import {IrObjective, StsObjective, type TaskObjective, type WeightedLoss} from './objective.js'
import {computePlan, type ResolvedLoss, type TrainPlan} from './plan.js'
import type {Sampler, SamplerModule} from './samplers/types.js'
import {globalBatchOptions} from './global-batch.js'

/** The IR losses when `tasks.ir.losses` is not set. */
export const DEFAULT_IR_LOSSES: LossSpec[] = [{name: 'ir-infonce'}]

/**
 * The STS losses when `tasks.sts.losses` is not set: the paper's objective (mid-infonce + 0.5·pro +
 * 2·pearson + 5·rank-kl) term by term, with the weights of the codiemb-sts loss.
 */
export const DEFAULT_STS_LOSSES: LossSpec[] = (Object.keys(PAPER_STS_WEIGHTS) as (keyof typeof PAPER_STS_WEIGHTS)[])
  .filter((term) => PAPER_STS_WEIGHTS[term] > 0)
  .map((term) => ({name: STS_TERM_LOSSES[term], weight: PAPER_STS_WEIGHTS[term]}))

/** Everything needed to train except the model. */
export interface TrainSetup {
  section: TrainSection
  datasets: TrainingDataset[]
  sampler: Sampler
  objectives: TaskObjective
  plan: TrainPlan
  seed: number
  settings: string
  /** What `settings` is the fingerprint of. */
  settingsDetail: Record<string, unknown>
  instructions: InstructionOptions
}

/** Creates a task's losses from the registry; each one's options are validated and get their schema defaults. */
export async function buildLosses(registry: Registry, task: 'ir' | 'sts', specs: LossSpec[]): Promise<{terms: WeightedLoss[]; resolved: ResolvedLoss[]}> {
  const terms: WeightedLoss[] = []
  const resolved: ResolvedLoss[] = []
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
    const options = validateOptions(entry.optionsSchema, spec.options ?? {}, {
      pointer: `${where}/options`,
      subject: `options for loss "${spec.name}"`,
      error: (message) => new TrainConfigError(message),
    })
    const mod = (await entry.load()) as LossModule
    const loss: TrainingLoss = mod.create(options)
    if (loss.task !== task) throw new TrainConfigError(`${where}: loss "${spec.name}" computes a ${loss.task} loss, not ${task}`)
    // The schema's default weight lives in a oneOf branch (a loss may be just a name), where defaults are not filled in.
    const weight = spec.weight ?? 1
    terms.push({loss, weight})
    resolved.push({name: spec.name, weight, options})
  }
  return {terms, resolved}
}

/**
 * The settings of a section that a resumed run must share, with the seed: what the fingerprint hashes.
 * Left out: what does not change the trajectory (paths, logging, prefetch, checkpoint and validation
 * schedules, the probe, onNonFinite, activation checkpointing: a resume may switch it to fit memory).
 */
function settingsOf(section: TrainSectionInput, seed: number): Record<string, unknown> {
  const {model: _m, output: _o, maxSteps: _s, logEvery: _l, prefetch: _p, checkpoint: _c, validation: _v, probeLoss: _pl, onNonFinite: _n, gradientCheckpointing: _g, ...rest} = section
  return {...rest, seed}
}

/** sha256 (16 hex digits) of settings as settingsOf gives them (checkpoints record both, so either can be checked against the other). */
export function hashSettings(settings: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(settings)).digest('hex').slice(0, 16)
}

/** sha256 (16 hex digits) of a section's settings that a resumed run must share, as earlier versions computed it. */
function fingerprintOf(section: TrainSectionInput, seed: number): string {
  return hashSettings(settingsOf(section, seed))
}

/** The settings the fingerprint of settingsFingerprint is taken over (recorded in checkpoints, so a refused resume can say what differs). */
export function settingsDetail(section: TrainSection, seed: number): Record<string, unknown> {
  return settingsOf(withoutDefaults(section, trainSectionSchema()), seed)
}

/**
 * A stable hash of the settings a resumed run must share with the run that wrote the checkpoint,
 * computed over the normalised section reduced to the settings that differ from the schema
 * defaults (in the order written): a key spelled out with its default value and a key left out
 * give the same fingerprint. Earlier versions hashed the section as written, so for a config that
 * spells out no default value this is exactly their fingerprint and their checkpoints resume.
 */
export function settingsFingerprint(section: TrainSection, seed: number): string {
  return fingerprintOf(withoutDefaults(section, trainSectionSchema()), seed)
}

/**
 * The fingerprint to hand the trainer when resuming from a checkpoint that carries
 * `checkpointSettings`. Normally this run's. A checkpoint written before defaults were filled in,
 * from a config that spells out default values, carries the hash of the section as written; given
 * that section (`asWritten`) and the same settings, its fingerprint is returned (`earlier: true`)
 * so the resume goes ahead. Anything else is a different configuration, which the trainer refuses.
 */
export function resumeSettings(checkpointSettings: string, setup: {settings: string; seed: number}, asWritten?: TrainSectionInput): {settings: string; earlier: boolean} {
  if (checkpointSettings !== setup.settings && asWritten && checkpointSettings === fingerprintOf(asWritten, setup.seed))
    return {settings: checkpointSettings, earlier: true}
  return {settings: setup.settings, earlier: false}
}

/** The section's sampler from the registry (options validated, defaults filled in) over datasets of these sizes. */
export async function buildSampler(
  section: TrainSection,
  registry: Registry,
  sizes: {name: string; task: 'ir' | 'sts'; size: number}[],
  seed: number,
  worldSize = 1,
): Promise<{sampler: Sampler; samplerName: string; samplerOptions: Record<string, unknown>}> {
  const samplerName = section.sampler.name
  if (!registry.has('sampler', samplerName)) {
    const known = registry.list('sampler').map((e) => e.name)
    throw new TrainConfigError(`/train/sampler/name: expected a registered sampler (${known.join(', ')}), got ${JSON.stringify(samplerName)}`)
  }
  const samplerEntry = registry.entry('sampler', samplerName)
  const samplerOptions = validateOptions<Record<string, unknown>>(samplerEntry.optionsSchema, section.sampler.options, {
    pointer: '/train/sampler/options',
    subject: `options for sampler "${samplerName}"`,
    error: (message) => new TrainConfigError(message),
  })
  const samplerModule = (await samplerEntry.load()) as SamplerModule
  // Data-parallel runs: the configured batch sizes are per process; the sampler plans global batches.
  return {sampler: samplerModule.create(sizes, globalBatchOptions(samplerOptions, worldSize), seed), samplerName, samplerOptions}
}

/** Loads data, losses and the sampler, and computes the plan. Touches no model. */
export async function setupTraining(section: TrainSection, registry: Registry, options: {defaultSeed?: number; worldSize?: number} = {}): Promise<TrainSetup> {
  const seed = section.seed ?? options.defaultSeed ?? 42
  const ir = await buildLosses(registry, 'ir', section.tasks.ir.losses ?? DEFAULT_IR_LOSSES)
  const sts = await buildLosses(registry, 'sts', section.tasks.sts.losses ?? DEFAULT_STS_LOSSES)
  const irObjective = new IrObjective(ir.terms as WeightedLoss<IrLoss>[])
  const stsObjective = new StsObjective(sts.terms as WeightedLoss<StsLoss>[])
  const datasets: TrainingDataset[] = []
  try {
    for (const spec of section.data) datasets.push(await loadTrainingDataset(fileSpec(spec, section.dataDir), irObjective.negatives, seed))
    return await setupOver(section, registry, datasets, {seed, ir, sts, irObjective, stsObjective, worldSize: options.worldSize})
  } catch (error) {
    await closeTrainingData(datasets)
    throw error
  }
}

/** setupTraining once the datasets are open (they are closed by the caller when this throws). */
async function setupOver(
  section: TrainSection,
  registry: Registry,
  datasets: TrainingDataset[],
  {seed, ir, sts, irObjective, stsObjective, worldSize}: {seed: number; ir: Awaited<ReturnType<typeof buildLosses>>; sts: Awaited<ReturnType<typeof buildLosses>>; irObjective: IrObjective; stsObjective: StsObjective; worldSize?: number},
): Promise<TrainSetup> {
  const tasksPresent = new Set(datasets.map((d) => d.task))
  const objectives: TaskObjective = {ir: tasksPresent.has('ir') ? irObjective : undefined, sts: tasksPresent.has('sts') ? stsObjective : undefined}

  for (const d of datasets) if (d.rows.length === 0) throw new TrainConfigError(`${d.path}: no usable rows (${d.dropped} dropped: IR rows need at least ${irObjective.negatives} hard negatives)`)
  const {sampler, samplerName, samplerOptions} = await buildSampler(section, registry, datasets.map((d) => ({name: d.name, task: d.task, size: d.rows.length})), seed, worldSize)
  const plan = computePlan(section, datasets, sampler, {name: samplerName, options: samplerOptions}, {ir: ir.resolved, sts: sts.resolved}, irObjective)
  return {section, datasets, sampler, objectives, plan, seed, settings: settingsFingerprint(section, seed), settingsDetail: settingsDetail(section, seed), instructions: section.instructions}
}
