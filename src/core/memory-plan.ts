/**
 * The memory plan of a training run, as the `plan` event (src/core/events.ts) and
 * `codiemb train --dry-run --json` report it: per task, the estimated peak memory of one step on the
 * chosen device (computed by src/train/memory-plan.ts). Types only.
 */

/** One way to run a task's step, and its estimated memory. */
export interface MemoryVariant {
  checkpointing: boolean
  /** GradCache chunk size (IR); absent: the whole batch part under one gradient tape. */
  chunkSize?: number
  /** Activations at their peak: kept for backward plus the backward pass's working set. */
  activationBytes: number
  /** The step's peak: parameters, AdamW moments, gradients and activations at the worst moment. */
  peakBytes: number
  /** Whether peakBytes fits the device's usable memory (absent when the device's memory is unknown). */
  fits?: boolean
}

/** A task's step at its largest: the task's batch at maximum length. */
export interface TaskMemory {
  task: 'ir' | 'sts'
  /** The texts the step embeds, per pass: rows × tokens (IR: queries, passages; STS: both sides). */
  passes: {name: string; rows: number; seqLen: number}[]
  /** With the run's settings (gradientCheckpointing, ir-infonce's chunk size). */
  configured: MemoryVariant
  /** Without and with checkpointing, each without and (IR) with GradCache chunking. */
  variants: MemoryVariant[]
}

/** Peak memory of a training step per task (src/train/memory-plan.ts). */
export interface MemoryPlan {
  backend: string
  device: string
  precision: string
  /** The op implementations the estimate assumes: codiemb's fused kernels (torch) or tfjs composites. */
  kernels: 'fused' | 'composite'
  /** Activations kept in bfloat16 between kernels (torch under --precision bf16); absent: float32. */
  bf16Activations?: boolean
  /** The device's memory (--device-memory, or what the backend reports); absent when unknown. */
  deviceBytes?: number
  deviceSource: string
  /** What the estimate lets a step use: a fraction of deviceBytes (the rest for the runtime). */
  usableBytes?: number
  parameters: number
  /** With LoRA (train.lora): the adapters' parameters, the only ones that train (gradients and moments are theirs). */
  trainableParameters?: number
  /** float32 parameters (and adapters), their gradients, and AdamW's first and second moments. */
  parameterBytes: number
  gradientBytes: number
  optimizerBytes: number
  tasks: TaskMemory[]
  /** The GradCache chunk size ir-infonce's `cache.chunkSize: auto` resolves to on this device. */
  autoChunkSize?: number
  /** Configured steps that do not fit, and auto chunk sizes that could not be resolved. */
  warnings: string[]
}
