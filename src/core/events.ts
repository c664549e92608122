/**
 * Every event codiemb reports while it works, as one union discriminated on `type`: the lines that
 * `--events FILE` writes as NDJSON (each with a `time` stamp added by the command) and what the
 * library engines hand to their `onEvent` callbacks. One vocabulary lets one renderer
 * (src/cli/progress.ts), a log reader or a dashboard follow prepare, train, eval, merge … alike.
 * data-schemas/events.schema.json is the same union as a JSON Schema (a test keeps the two in step).
 *
 * Types only, on the ground floor, so that every engine can name the events it reports.
 *
 * `done` is the one type several commands share: the last event of a successful run, told apart by
 * its `command`.
 */

import type {MemoryPlan} from './memory-plan.js'
import type {MergeDoneEvent, MergeProgressEvent} from './merge-events.js'

export type {MemoryPlan, MemoryVariant, TaskMemory} from './memory-plan.js'

// ---------------------------------------------------------------------------------------------------
// Any command

/** The tensor backend a command activated, and why that one. */
export interface BackendEvent {
  type: 'backend'
  name: string
  reason: string
}

/** The command failed (the last event of a failed run). */
export interface ErrorEvent {
  type: 'error'
  name: string
  message: string
  exitCode: number
}

/** A line of status text (loading a model, saving, resuming …). */
export interface StatusEvent {
  type: 'status'
  message: string
}

// ---------------------------------------------------------------------------------------------------
// train

/** A loss as it runs: its weight in the task's sum and its options with the schema's defaults filled in. */
export interface ResolvedLoss {
  name: string
  weight: number
  options: Record<string, unknown>
}

/** A dataset as the training plan uses it. */
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

/** What a training run will do, worked out before a model is loaded. */
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
  losses: Record<string, ResolvedLoss[]>
  droppedRows: number
  /** The estimated peak memory of a step per task, for the chosen device (added once the model's shape is known). */
  memory?: MemoryPlan
}

/** The training plan (also `train --dry-run`'s only event). */
export interface PlanEvent extends TrainPlan {
  type: 'plan'
}

/** One (logged) optimizer step. */
export interface StepEvent {
  type: 'step'
  step: number
  totalSteps: number
  epoch: number
  lr: number
  /** Mean loss of this step's batches, per task. */
  loss: Record<string, number>
  /** Per task with several loss terms: each term's unweighted mean value (e.g. sts: {mid-infonce, pro, pearson, rank-kl}). */
  components: Record<string, Record<string, number>>
  gradNorm: number
  examples: number
  tokens: number
  examplesPerSecond: number
  tokensPerSecond: number
  elapsedSeconds: number
  etaSeconds: number
}

/** The objective on the fixed probe batches (eval mode: no dropout, no gradients). */
export interface ProbeResult {
  type: 'probe'
  /** Optimizer steps done when measured. */
  step: number
  totalSteps: number
  when: 'start' | 'checkpoint' | 'epoch' | 'end'
  /** Mean objective over each task's probe batches. */
  loss: Record<string, number>
  /** Per task with several loss terms: each term's unweighted mean value. */
  components: Record<string, Record<string, number>>
  /** Probe batches and rows per task. */
  batches: Record<string, number>
  rows: Record<string, number>
  seconds: number
}

/** A checkpoint directory was written. */
export interface CheckpointEvent {
  type: 'checkpoint'
  path: string
  step: number
}

/** STS validation before training (epoch 0) and after every epoch. */
export interface ValidationEvent {
  type: 'validation'
  epoch: number
  /** Validation dataset name -> cosine Spearman × 100. */
  spearman: Record<string, number>
}

/** Training stopped on request (SIGINT/SIGTERM; a library's abort counts as SIGINT) after a whole step, saving no final model. */
export interface InterruptedEvent {
  type: 'interrupted'
  signal: 'SIGINT' | 'SIGTERM'
  step: number
  totalSteps: number
  /** Holds every step done, to resume from (`--resume`); absent when this run did no step. */
  checkpoint?: string
}

/** `codiemb train` finished and saved the final model. */
export interface TrainDoneEvent {
  type: 'done'
  command: 'train'
  output: string
  steps: number
  /** Mean loss per task over the first and the last quarter of the steps that had that task. */
  lossFirst: Record<string, number>
  lossLast: Record<string, number>
  /** The first and last probe measurement (when the run measures a probe loss). */
  probe?: {first: ProbeResult; last: ProbeResult}
}

/** What a run went on despite: `unverified-file`, a training file without checksums no manifest lists; `skipped-batch`, a batch left out for a non-finite loss or gradient (onNonFinite: skip-batch; `rows`: file rows, from 0). */
export interface WarningEvent {
  type: 'warning'
  code: 'unverified-file' | 'skipped-batch'
  message: string
  file?: string
  step?: number
  epoch?: number
  batch?: number
  task?: 'ir' | 'sts'
  dataset?: string
  rows?: number[]
}

export type TrainEvent = PlanEvent | StatusEvent | StepEvent | ProbeResult | CheckpointEvent | ValidationEvent | InterruptedEvent | WarningEvent

// ---------------------------------------------------------------------------------------------------
// prepare

/** A dataset of the prepare configuration is about to be read. */
export interface DatasetStartEvent {
  type: 'dataset-start'
  dataset: string
  reader: string
  task: 'ir' | 'sts' | 'eval'
  /** Position in the configuration (0-based) and the number of datasets. */
  index: number
  total: number
}

/** Rows of the dataset written so far (every 50,000 rows). */
export interface DatasetProgressEvent {
  type: 'dataset-progress'
  dataset: string
  rows: number
  rejected: number
}

/** The dataset's files are written (into the staging folder: the output changes when every dataset is done). */
export interface DatasetDoneEvent {
  type: 'dataset-done'
  dataset: string
  rows: number
  rejected: number
  unused: number
  seconds: number
}

export type PrepareEvent = DatasetStartEvent | DatasetProgressEvent | DatasetDoneEvent

// ---------------------------------------------------------------------------------------------------
// data pull

/** The repository's file list at the revision (after --include). */
export interface ListedEvent {
  type: 'listed'
  files: number
  bytes: number
}

/** A file download begins (`resumeFrom` > 0: continuing an interrupted one). */
export interface FileStartEvent {
  type: 'file-start'
  path: string
  size: number
  resumeFrom: number
}

/** A file is in place, checked against the listed size (and sha256 for LFS files). */
export interface FileDoneEvent {
  type: 'file-done'
  path: string
  size: number
  status: 'downloaded' | 'resumed' | 'present'
}

export type PullEvent = ListedEvent | FileStartEvent | FileDoneEvent

// ---------------------------------------------------------------------------------------------------
// Encoding and search (the building blocks of embed, eval and mine)

/** Texts encoded so far by one encode call (`tokens`: non-padding tokens, when the encoder counts them). */
export interface EncodeProgressEvent {
  type: 'encode-progress'
  done: number
  total: number
  /** Non-padding tokens encoded so far. */
  tokens?: number
  /** Tokens computed so far, padding included (rows x longest row, per batch): 1 - tokens/padded is the padding ratio. */
  padded?: number
}

/** Corpus documents searched so far by one exact search (the corpus is a stream: its size is the caller's to know). */
export interface SearchProgressEvent {
  type: 'search-progress'
  done: number
}

// ---------------------------------------------------------------------------------------------------
// eval

/** Where an evaluation task is: load, encode (queries / corpus), search, score (geometry), done. */
export interface EvalProgressEvent {
  type: 'eval-progress'
  task: string
  stage: 'load' | 'encode' | 'search' | 'score' | 'done'
  detail?: string
  done?: number
  total?: number
}

/** One task's scores (MTEB key names), as written to its TaskResult file. */
export interface EvalTaskEvent {
  type: 'eval-task'
  task: string
  split: string
  main_score: number
  scores: Record<string, number>
  /** Seconds spent on the task (encoding + scoring). */
  evaluation_time: number
}

/** `codiemb eval` wrote its results folder (summary.json averages). */
export interface EvalSummaryEvent {
  type: 'eval-summary'
  dir: string
  averages: {ir: number | null; sts: number | null; overall: number | null}
}

/** What the evaluation engine reports. */
export type EvalEvent = EvalProgressEvent | EvalTaskEvent

// ---------------------------------------------------------------------------------------------------
// embed, mine

/** Texts embedded so far by `codiemb embed` (the input is a stream: no total). */
export interface EmbedProgressEvent {
  type: 'embed-progress'
  done: number
  tokens: number
  seconds: number
}

/** `codiemb embed` wrote its embeddings file. */
export interface EmbedDoneEvent {
  type: 'done'
  command: 'embed'
  /** Always "embed" (the field predates `command`). */
  stage: 'embed'
  rows: number
  tokens: number
  seconds: number
}

/** Hard-negative mining: which part is running and how far it is. */
export interface MineProgressEvent {
  type: 'mine-progress'
  stage: 'encode corpus' | 'encode queries' | 'encode positives' | 'search'
  done: number
  total: number
}

// ---------------------------------------------------------------------------------------------------
// merge (src/core/merge-events.ts)

export type {MergeDoneEvent, MergeProgressEvent, MergeSummary} from './merge-events.js'

// ---------------------------------------------------------------------------------------------------
// quickstart

/** A quickstart stage (prepare, init, train-a, train-b, merge, eval, report) begins. */
export interface StageStartEvent {
  type: 'stage-start'
  stage: string
}

/** A quickstart stage ended: wall-clock and CPU seconds of this process. */
export interface StageDoneEvent {
  type: 'stage-done'
  stage: string
  seconds: number
  cpuSeconds: number
}

/** One model's quickstart scores (× 100). */
export interface ModelScores {
  name: string
  path: string
  /** Cosine Spearman × 100 on the held-out SNLI test pairs. */
  sts: number
  /** nDCG@10 × 100 on the retrieval task. */
  retrieval: number
  resultsDir: string
}

/** A model was evaluated on the quickstart's two tasks. */
export interface EvalModelEvent {
  type: 'eval-model'
  model: string
  sts: number
  retrieval: number
}

/** What a quickstart run produced (its --json result and quickstart.json). */
export interface QuickstartResult {
  out: string
  steps: number
  models: ModelScores[]
  /** Per model and task, the change over the untrained model (points × 100). */
  improvement: Record<string, {sts: number; retrieval: number}>
  /** Plain statements of what improved and what did not. */
  verdict: string[]
  merge: {path: string; meanWeights: number[]}
  report: string
  /** Wall-clock seconds, in all and per stage. */
  seconds: number
  stageSeconds: Record<string, number>
  /** CPU seconds of this process (user + system), in all and per stage. */
  cpuSeconds: number
  stageCpuSeconds: Record<string, number>
}

/** `codiemb quickstart` finished: its whole result. */
export interface QuickstartDoneEvent extends QuickstartResult {
  type: 'done'
  command: 'quickstart'
}

/** An engine's event as a pipeline forwards it, tagged with the pipeline stage it happened in. */
export type InStage<E> = E extends unknown ? E & {stage: string} : never

/** An evaluation event as a pipeline that evaluates several models forwards it, tagged with the model. */
export type OfModel<E> = E extends unknown ? E & {model: string} : never

/** What the quickstart pipeline reports: its stages, and the events of the engines it runs. */
export type QuickstartEvent =
  | StageStartEvent
  | StageDoneEvent
  | EvalModelEvent
  | InStage<PrepareEvent | StatusEvent | StepEvent | MergeProgressEvent>
  | OfModel<EvalEvent>

// ---------------------------------------------------------------------------------------------------

/** The last event of a successful run, per command that reports one. */
export type DoneEvent = TrainDoneEvent | EmbedDoneEvent | MergeDoneEvent | QuickstartDoneEvent

/** Every event codiemb reports: one `--events` NDJSON line, or one engine `onEvent` call. */
export type ProgressEvent =
  | BackendEvent
  | ErrorEvent
  | DoneEvent
  | TrainEvent
  | PrepareEvent
  | PullEvent
  | EncodeProgressEvent
  | SearchProgressEvent
  | EvalEvent
  | EvalSummaryEvent
  | EmbedProgressEvent
  | MineProgressEvent
  | MergeProgressEvent
  | QuickstartEvent

/** The event types, e.g. for a switch that must handle them all. */
export type ProgressEventType = ProgressEvent['type']
