/**
 * The memory plan of a recipe whose training files are not on this machine (planning a paper-scale
 * run on a laptop): the tasks come from the files' names (`*.ir-example.arrow`, `*.sts-pair.arrow`,
 * as `codiemb prepare` names them), the batch sizes from the sampler's options, the lengths from the
 * section, and the model's shape from its config.json alone (src/model/shape.ts). No row is read, so
 * there are no epoch or step counts; the sampler is built over stand-in dataset sizes only to ask it
 * for each task's batch size and whether its batches mix tasks.
 */
import type {Registry} from '../registry/registry.js'
import type {MemoryPlan} from '../core/events.js'
import {modelShape, type ModelSource} from '../model/shape.js'
import {TrainConfigError, fileSpec, type TrainSection} from './config.js'
import {buildLosses, buildSampler, DEFAULT_IR_LOSSES, DEFAULT_STS_LOSSES} from './setup.js'
import {IrObjective, StsObjective, type WeightedLoss} from './objective.js'
import type {IrLoss, StsLoss} from './losses/types.js'
import {planDevice, planMemory, type MemoryTarget} from './memory-plan.js'

/** Rows each stand-in dataset gets: enough for many batches of any sampler. */
const STAND_IN_ROWS = 10_000

/** The task a prepared file's name says it holds. */
export function taskFromFileName(path: string): 'ir' | 'sts' {
  if (/\.ir-example\.arrow$/.test(path)) return 'ir'
  if (/\.sts-pair\.arrow$/.test(path)) return 'sts'
  throw new TrainConfigError(`${path}: training file not found, and its name does not say its task (expected *.ir-example.arrow or *.sts-pair.arrow, as codiemb prepare writes them)`)
}

/** Plans the memory of `section`'s steps from names, options and the model's config alone. */
export async function planMemoryFromShapes(section: TrainSection, registry: Registry, model: ModelSource, target: MemoryTarget, options: {defaultSeed?: number} = {}): Promise<MemoryPlan> {
  const seed = section.seed ?? options.defaultSeed ?? 42
  const ir = await buildLosses(registry, 'ir', section.tasks.ir.losses ?? DEFAULT_IR_LOSSES)
  const sts = await buildLosses(registry, 'sts', section.tasks.sts.losses ?? DEFAULT_STS_LOSSES)
  const files = section.data.map((spec) => fileSpec(spec, section.dataDir))
  const sizes = files.map((f) => ({name: f.name ?? f.path, task: taskFromFileName(f.path), size: STAND_IN_ROWS}))
  const tasks = new Set(sizes.map((s) => s.task))
  const {sampler} = await buildSampler(section, registry, sizes, seed)
  const objectives = {
    ir: tasks.has('ir') ? new IrObjective(ir.terms as WeightedLoss<IrLoss>[]) : undefined,
    sts: tasks.has('sts') ? new StsObjective(sts.terms as WeightedLoss<StsLoss>[]) : undefined,
  }
  return planMemory({section, sampler, objectives}, await modelShape(model, registry), await planDevice(registry, target))
}
