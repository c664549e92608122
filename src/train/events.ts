/**
 * What a training run reports: its events — plan, status, steps, probe measurements, checkpoints,
 * validation (the TrainEvent members, defined with every other event in src/core/events.ts and
 * re-exported here for src/train/*) — and the final summary.
 */
import type {StopSignal} from '../core/errors.js'
import type {ProbeResult} from '../core/events.js'

export type {CheckpointEvent, InterruptedEvent, PlanEvent, ProbeResult, StatusEvent, StepEvent, TrainEvent, ValidationEvent, WarningEvent} from '../core/events.js'

export interface TrainSummary {
  steps: number
  totalSteps: number
  epochs: number
  examples: number
  tokens: number
  seconds: number
  /** Mean loss per task over the first and the last quarter of the steps that had that task. */
  lossFirst: Record<string, number>
  lossLast: Record<string, number>
  history: {step: number; loss: Record<string, number>}[]
  checkpoints: string[]
  stoppedEarly: boolean
  /** Set when the run stopped on request (TrainerOptions.signal): the signal, and the checkpoint holding every step done (absent when there is none). */
  interrupted?: {signal: StopSignal; checkpoint?: string}
  /** Batches left out of their step because their loss or a gradient was not finite (onNonFinite: skip-batch). */
  skippedBatches: number
  /** Probe losses (when `probe` is set): the first and last measurement of this run, and all of them. */
  probe?: {first: ProbeResult; last: ProbeResult; history: ProbeResult[]}
  /** Data pipeline: batches consumed, how many were not tokenized yet when the loop asked, and the time it waited. */
  pipeline: {batches: number; notReady: number; waitSeconds: number; tokenizerThread: 'worker' | 'caller'}
}
