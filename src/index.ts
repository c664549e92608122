/**
 * codiemb's public API: `import {…} from 'codiemb'`.
 *
 * What a library user needs to run the engines without the CLI (prepare, train, merge, evaluate,
 * embed), and what a plugin author needs to write entries for the registry with the same contracts
 * the built-ins follow. Every engine takes the registry as a parameter: build one with
 * `builtinRegistry()` (the built-ins alone) or `loadRegistry(config)` (every installed plugin), and
 * activate a tensor backend with `selectBackend(registry, 'cpu')` before the first tensor.
 *
 * This module only re-exports and declares types: importing it runs no code of its own (no backend
 * is chosen, nothing is registered, nothing is written). Property checks for plugin losses are in
 * the separate entry point `codiemb/testing` (src/testing/), so this one never loads node:assert.
 */
import type {Kind, RegistryEntry} from './registry/types.js'
import type {ReaderModule} from './data/types.js'
import type {LossModule} from './train/losses/types.js'
import type {SamplerModule} from './train/samplers/types.js'
import type {EncoderArchitecture} from './model/architecture.js'
import type {Merger} from './merge/types.js'
import type {BenchmarkImpl} from './eval/tasks.js'
import type {TensorBackendPlugin} from './tensor/backend.js'

// ── The registry ────────────────────────────────────────────────────────────────────────────────
export {Registry} from './registry/registry.js'
export {loadRegistry, REGISTER_HOOK} from './registry/load.js'
export {KINDS, KINDS_WITH_OPTIONS, type JsonSchema, type Kind, type RegisterHookOptions, type Registrar, type RegistryEntry} from './registry/types.js'
export {BUILTIN_PLUGIN, builtinRegistry} from './builtins.js'

/** What an entry's `load()` resolves to, for each kind. */
export interface EntryImplementations {
  reader: ReaderModule
  loss: LossModule
  sampler: SamplerModule
  encoder: EncoderArchitecture
  /** `unknown` options: a merger's own options type stays its business (resolveOptions makes it). */
  merger: Merger<unknown>
  benchmark: BenchmarkImpl
  backend: TensorBackendPlugin
}

/** A registry entry of kind `K` whose `load()` returns that kind's contract; assignable to `registry.register`. */
export type EntryOf<K extends Kind> = RegistryEntry<EntryImplementations[K]> & {kind: K}
export type ReaderEntry = EntryOf<'reader'>
export type LossEntry = EntryOf<'loss'>
export type SamplerEntry = EntryOf<'sampler'>
export type EncoderEntry = EntryOf<'encoder'>
export type MergerEntry = EntryOf<'merger'>
export type BenchmarkEntry = EntryOf<'benchmark'>
export type BackendEntry = EntryOf<'backend'>

// ── Plugin contracts, by kind ───────────────────────────────────────────────────────────────────
// reader
export {TASKS} from './data/types.js'
export type {
  CorpusDraft,
  DraftOfKind,
  IrDraft,
  PreparedKind,
  QrelDraft,
  QueryDraft,
  ReadItem,
  ReadRequest,
  Reader,
  ReaderModule,
  RecordKind,
  SourceLocation,
  SplitSource,
  StsDraft,
  Task,
} from './data/types.js'

// loss
export type {IrEmbeddings, IrLoss, LossModule, StsEmbeddings, StsLoss, TaskKind, TrainingLoss} from './train/losses/types.js'
export type {IrInfoNceOptions} from './train/losses/ir-infonce.js'
export type {CodiembStsOptions, CodiembStsWeights} from './train/losses/codiemb-sts.js'
export type {CosentOptions} from './train/losses/cosent.js'
export type {MidInfoNceOptions} from './train/losses/mid-infonce.js'
export type {ProOptions} from './train/losses/pro.js'
export type {RankKlOptions} from './train/losses/rank-kl.js'

// sampler
export type {BatchPart, EpochBatches, PartSize, Sampler, SamplerBatch, SamplerDataset, SamplerModule, SamplerState} from './train/samplers/types.js'
export type {BalancingPolicy, DynamicSamplerOptions} from './train/samplers/dynamic.js'
export type {FixedSizeSamplerOptions} from './train/samplers/base.js'

// encoder
export type {ActivationMemory, ActivationShape, EncoderArchitecture, ForwardInputs, ForwardOptions, HfConfig, RandomInitOptions} from './model/architecture.js'

// merger
export type {Merger, TensorMergeInput} from './merge/types.js'
export type {DareOptions} from './merge/methods/dare.js'
export type {DeltaOptions} from './merge/methods/delta.js'
export type {SoupOptions} from './merge/methods/soup.js'
export type {TaskArithmeticOptions} from './merge/methods/task-arithmetic.js'
export type {TiesOptions} from './merge/methods/ties.js'

// benchmark
export {DEFAULT_MAIN_SCORE, taskFromConfig} from './eval/tasks.js'
export type {BenchmarkImpl, ConfigTask, HfDatasetRef, TaskDefinition, TaskType} from './eval/tasks.js'

// backend
export {AUTO_ORDER, BACKEND_CHOICES, probeBackends, selectBackend} from './tensor/backend.js'
export type {BackendChoice, BackendInitOptions, BackendProbe, BackendSelection, DeviceMemory, TensorBackendPlugin} from './tensor/backend.js'

// ── Engines ─────────────────────────────────────────────────────────────────────────────────────
// configuration (the sections the engines take, validated and with $import resolved)
export {loadConfig} from './config/load.js'
export type {CodiembConfig, LoadedConfig} from './config/load.js'

// prepare
export {MANIFEST, outputPath, prepare, readManifest} from './data/prepare.js'
export type {DatasetConfig, DatasetResult, Manifest, ManifestFile, PrepareConfig, PrepareOptions, PrepareResult, SourceFile} from './data/prepare.js'
export type {GroupConfig, GroupSummary} from './data/grouping.js'
export type {FilterOp, RowFilter} from './data/row-filter.js'

// train
export {normaliseTrainSection} from './train/config.js'
export type {FileSpec, LossSpec, ModelSpec, TrainSection, TrainSectionInput} from './train/config.js'
export {DEFAULT_IR_LOSSES, DEFAULT_STS_LOSSES, setupTraining} from './train/setup.js'
export type {TrainSetup} from './train/setup.js'
export {runTraining} from './train/run.js'
export type {TrainRunOptions, TrainRunResult, ValidationResult} from './train/run.js'
export {planMemory, planTrainingMemory, SINGLE_PROCESS} from './train/memory-plan.js'
export type {MemoryTarget, PlanDevice, ProcessGroup} from './train/memory-plan.js'
export {DataParallel, ShardedSampler, checkWorldSize} from './train/distributed.js'
export {globalBatchOptions} from './train/global-batch.js'
export {joinProcessGroup} from './tensor/process-group.js'
export type {CollectiveStats, Collectives} from './tensor/collectives.js'
export {DEFAULT_DIST_TIMEOUT_SECONDS, distributedEnv} from './core/distributed-env.js'
export type {DistributedEnv} from './core/distributed-env.js'
export type {DeviceGroup} from './train/losses/types.js'

// merge
export {mergeCheckpoints} from './merge/engine.js'
export type {InputRecord, InputRef, MergeReport, MergeRequest, TensorRecord} from './merge/engine.js'

// evaluate (evaluateTasks: names or definitions in, scores out; runTasks / evaluateTask: full evaluations)
export {evaluateTask, evaluateTasks, runTasks} from './eval/evaluate.js'
export type {EvalEncoder, EvaluateOptions, TaskEvaluation, TaskScores} from './eval/evaluate.js'
export {resolveTasks} from './eval/resolve-tasks.js'
export type {TaskSelection} from './eval/resolve-tasks.js'

// encoders and embedding
export {architectureFor, initRandomEncoder, loadEncoder} from './model/encoder.js'
export type {EncodeOptions, Encoder, ForwardResult, LoadEncoderOptions, PoolingMode, RandomEncoderOptions, SaveOptions, TokenBatch} from './model/encoder.js'
export {POOLING_MODES} from './model/pooling.js'
export {checkModelDirectory} from './model/consistency.js'
export type {TextTokenizer, TokenizeOptions} from './model/tokenizer/types.js'
export {embedFile, readTextItems} from './model/embed.js'
export type {EmbedFileOptions, EmbedFileResult, TextItem, TextSourceOptions} from './model/embed.js'

// ── Errors ──────────────────────────────────────────────────────────────────────────────────────
// Every error codiemb throws on purpose. Each carries `exitCode` (2: usage, configuration or bad input;
// 1: anything else), which `exitCodeOf` reads from any error.
export {CodiembError, ExecutionError, EXIT_FAILURE, EXIT_USER_ERROR, exitCodeOf} from './core/errors.js'
export type {CodiembErrorOptions} from './core/errors.js'
export {UnknownEntryError} from './registry/registry.js'
export {BackendUnavailableError} from './tensor/backend.js'
export {RecordFileError} from './io/arrow-records.js'
export {SafetensorsError} from './io/safetensors.js'
export {DataError} from './data/types.js'
export {HubError} from './data/hub.js'
export {MergeInputError} from './merge/types.js'
export {EncoderLoadError, ModelConfigError} from './model/encoder.js'
export {TokenizeTextError, TokenizerError} from './model/tokenizer/types.js'
export {LoraError, type LoraOptions, type LoraState} from './model/lora.js'
export {EmbedInputError} from './model/embed.js'
export {TaskDataError} from './eval/task-data.js'
export {TaskSelectionError} from './eval/resolve-tasks.js'
export {TrainingDataError} from './train/data.js'
export {TrainConfigError} from './train/config.js'
export {CheckpointError} from './train/checkpoint.js'
export {NonFiniteError} from './train/finite.js'
export {PromptTemplateError} from './core/prompts.js'

// ── Events ──────────────────────────────────────────────────────────────────────────────────────
// What the engines report through their callbacks (and the CLI writes with --events).
// One union of every event (`ProgressEvent`, discriminated on `type`), its members, and the shapes they carry.
export type * from './core/events.js'
export type {TrainSummary} from './train/events.js'

// ── Prompts ─────────────────────────────────────────────────────────────────────────────────────
// The one prompt builder train, eval, embed and mine use: templates with the text inside and around it.
export {applyPrompt, describePrompt, fillTemplate, INSTRUCTION_TEMPLATE, literalPrompt, NO_PROMPT, PAPER_INSTRUCTIONS} from './core/prompts.js'
export type {InstructionOptions, Prompt, PromptedText} from './core/prompts.js'

// ── Outputs ─────────────────────────────────────────────────────────────────────────────────────
// What codiemb may write, replace or delete: claim an output before writing it (refused when codiemb
// did not create what is there, locked against a second run, dead runs' temporaries removed), release it after.
export {claimOutput, isCodiembOutput, lockOutput, OUTPUT_MARKER, readOutputMarker, releaseAllOutputs, writeOutputDirectory} from './core/outputs.js'
export type {OutputClaim, OutputContent, OutputKind, OutputMarker, OutputPolicy, OutputSpec} from './core/outputs.js'
