/**
 * The `train` configuration section (data-schemas/config/train.schema.json): its type as written,
 * its normalised type (validated, every schema default filled in), the function that normalises a
 * section built in code, the error for bad training settings, and how its file paths resolve.
 */
import {isAbsolute, resolve} from 'node:path'
import {readSchema} from '../config/schema.js'
import {validateOptions} from '../config/validate.js'
import type {JsonSchema} from '../registry/types.js'
import type {InstructionOptions, TrainingDatasetSpec} from './data.js'
import {CodiembError} from '../core/errors.js'

export class TrainConfigError extends CodiembError {
  override name = 'TrainConfigError'
}

export type Pooling = 'cls' | 'mean' | 'last-token' | 'weighted-mean'

/** A registered loss by name, or with its weight in the task's sum (default 1) and its options. */
export type LossSpec = string | {name: string; weight?: number; options?: Record<string, unknown>}

/** A prepared training file: its path, or the path with a display name, instruction override and row limit. */
export type FileSpec = string | {path: string; name?: string; instruction?: string; limit?: number; pick?: 'first' | 'random'}

/** A prepared sts-pair file for validation. */
export type ValidationFileSpec = string | {path: string; name?: string; instruction?: string}

/** A model directory to fine-tune, or the shape of a randomly initialised encoder. */
export type ModelSpec =
  | string
  | {path: string; isCausal?: boolean}
  | {init: {arch: string; tokenizer: string; layers: number; hidden: number; heads: number; intermediate: number; maxPositions?: number; pooling?: Pooling; seed?: number}}

/** The `train` section as written: keys with a schema default may be left out. */
export interface TrainSectionInput {
  model: ModelSpec
  pooling?: Pooling
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
  gradientCheckpointing?: boolean
  middleLayer?: number
  instructions?: Partial<InstructionOptions>
  prefetch?: number
  maxSteps?: number
  logEvery?: number
  checkpoint?: {dir?: string; everyEpoch?: boolean; everySteps?: number; keepLast?: number}
  validation?: {sts?: ValidationFileSpec[]; batchSize?: number; limit?: number}
  /** Fixed probe batches per task on which the objective is measured without dropout (before, at checkpoints/epochs, at the end). */
  probeLoss?: {batches: number; seed?: number}
  /** A NaN or infinite loss or gradient: stop the run (default) or skip the batch. */
  onNonFinite?: 'stop' | 'skip-batch'
  /** Train LoRA adapters instead of the weights (src/model/lora.ts). */
  lora?: {rank?: number; alpha?: number; dropout?: number; targetModules?: string[] | 'all-linear'}
}

/**
 * The `train` section normalised (what the config loader and normaliseTrainSection return): every
 * key whose schema has a default is present. Keys without one (seed, warmupSteps, middleLayer,
 * maxSteps, the task losses, …) stay optional; their fallbacks are not schema defaults.
 */
export type TrainSection = TrainSectionInput & {
  tasks: {ir: {maxLength: {query: number; passage: number}}; sts: {maxLength: number}}
  sampler: {name: string; options: Record<string, unknown>}
  epochs: number
  learningRate: number
  warmupRatio: number
  weightDecay: number
  adamBetas: [number, number]
  adamEpsilon: number
  maxGradNorm: number
  gradientAccumulation: number
  dropout: boolean
  gradientCheckpointing: boolean
  instructions: InstructionOptions
  prefetch: number
  logEvery: number
  checkpoint: {everyEpoch: boolean; everySteps: number; keepLast: number}
  validation: {batchSize: number}
  onNonFinite: 'stop' | 'skip-batch'
}

let schema: JsonSchema | undefined

/** data-schemas/config/train.schema.json, read once. */
export function trainSectionSchema(): JsonSchema {
  return (schema ??= readSchema('config/train.schema.json'))
}

/**
 * Validates a `train` section built in code and returns a copy with the schema's defaults filled in
 * (what loadConfig does for a section read from a file). Throws TrainConfigError listing every problem.
 */
export function normaliseTrainSection(section: TrainSectionInput): TrainSection {
  return validateOptions<TrainSection>(trainSectionSchema(), section, {pointer: '/train', subject: 'train section', error: (message) => new TrainConfigError(message)})
}

/** `p` as is when absolute, else relative to `base` (the working directory when there is none). */
export function resolvePath(base: string | undefined, p: string): string {
  return isAbsolute(p) ? p : resolve(base ?? '.', p)
}

/** A training or validation file entry with its path resolved against dataDir. */
export function fileSpec(spec: FileSpec | ValidationFileSpec, base: string | undefined): TrainingDatasetSpec {
  const s = typeof spec === 'string' ? {path: spec} : spec
  return {...s, path: resolvePath(base, s.path)}
}
