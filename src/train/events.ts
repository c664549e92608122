/** What a training run reports: per-step events, probe measurements, and the final summary. */

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
  /** Probe losses (when `probe` is set): the first and last measurement of this run, and all of them. */
  probe?: {first: ProbeResult; last: ProbeResult; history: ProbeResult[]}
  /** Data pipeline: batches consumed, how many were not tokenized yet when the loop asked, and the time it waited. */
  pipeline: {batches: number; notReady: number; waitSeconds: number; tokenizerThread: 'worker' | 'caller'}
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
