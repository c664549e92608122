/**
 * Resuming trusts nothing in the checkpoint. Before any weight is loaded, trainer_state.json
 * (read and schema-checked by checkpoint.ts) must fit the run it is to continue:
 *
 * - the settings fingerprint is this configuration's (and, when the checkpoint records the settings
 *   it was taken over, it is their fingerprint: an edited state is refused, and a mismatch names
 *   the settings that differ);
 * - the seed is the run's; the planned steps are the plan's, and the step lies within them;
 * - the step is the one the sampler position implies (epoch × steps per epoch + the batches of the
 *   epoch handed out, in groups of gradientAccumulation), and, given a fresh sampler of this run,
 *   the sampler's RNG state is the one that epoch starts with;
 * - the loss and probe histories do not run past the step;
 * - the training data is what it was: same datasets, usable rows and content checksums.
 *
 * The optimizer moments must then cover the model's parameters with their shapes, and its step count
 * cannot exceed the state's. Every failure is a CheckpointError (exit code 2) naming the file.
 */
import {join} from 'node:path'
import {CheckpointError, OPTIMIZER_FILE, TRAINER_STATE_FILE, type TrainerState} from './checkpoint.js'
import type {TrainingDataset} from './data.js'
import type {Sampler} from './samplers/types.js'
import {hashSettings} from './setup.js'

/** What a checkpoint's state must agree with: the run's plan, settings, seed and data. */
export interface ResumeExpectations {
  totalSteps: number
  stepsPerEpoch: number
  batchesPerEpoch: number
  gradientAccumulation: number
  epochs: number
  seed: number
  settings: string
  /** The settings `settings` is the fingerprint of, to name what differs. */
  settingsDetail?: Record<string, unknown>
  data: {name: string; rows: number; digest?: string}[]
  /** A sampler of this run in its initial state (left as it was): checks the state's epoch RNG. */
  sampler?: Sampler
}

/** What a checkpoint records about the training data. */
export function dataIdentity(datasets: TrainingDataset[]): {name: string; rows: number; digest?: string}[] {
  return datasets.map((d) => ({name: d.name, rows: d.rows.length, ...(d.digest ? {digest: d.digest} : {})}))
}

const short = (value: unknown) => {
  const text = JSON.stringify(value) ?? 'absent'
  return text.length > 60 ? `${text.slice(0, 57)}…` : text
}

/** The top-level settings that differ between two settings records: `key: checkpoint → this run`. */
export function settingsDifferences(checkpoint: Record<string, unknown>, current: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(checkpoint), ...Object.keys(current)])]
  return keys.filter((k) => JSON.stringify(checkpoint[k]) !== JSON.stringify(current[k])).map((k) => `${k}: ${short(checkpoint[k])} → ${short(current[k])}`)
}

/** The epoch RNG state a fresh `sampler` reaches at `epoch`; the sampler is left as it was. */
function epochRngAt(sampler: Sampler, epoch: number): number {
  const initial = sampler.getState()
  try {
    for (let e = initial.epoch; e < epoch; e++) sampler.nextEpoch()
    return sampler.getState().epochRng
  } finally {
    sampler.setState(initial)
  }
}

/** Checks that `state`, read from checkpoint `dir`, fits the run described by `expect` (see the module comment). */
export function checkResumeState(state: TrainerState, dir: string, expect: ResumeExpectations): void {
  const file = join(dir, TRAINER_STATE_FILE)
  const fail = (message: string): never => {
    throw new CheckpointError(`${file}: ${message}`)
  }
  if (state.settingsDetail && hashSettings(state.settingsDetail) !== state.settings)
    fail(`its settings fingerprint ${state.settings} is not that of the settings it records (the file was edited or damaged)`)
  if (state.settings !== expect.settings) {
    const differing = state.settingsDetail && expect.settingsDetail ? settingsDifferences(state.settingsDetail, expect.settingsDetail) : []
    fail(
      `written under different training settings (fingerprint ${state.settings}, this configuration's ${expect.settings})` +
        (differing.length ? `; they differ in:\n  ${differing.join('\n  ')}\n` : '. ') +
        'A resume needs the same data, tasks, sampler, optimizer and seed; train without --resume to start over.',
    )
  }
  if (state.seed !== expect.seed) fail(`seed ${state.seed} is not this run's seed ${expect.seed}`)
  if (state.totalSteps !== expect.totalSteps) fail(`the checkpoint plans ${state.totalSteps} steps, this configuration ${expect.totalSteps}`)
  if (state.step > expect.totalSteps) fail(`step ${state.step} is beyond the ${expect.totalSteps} steps of the plan`)
  const {epoch, position} = state.sampler
  const ga = expect.gradientAccumulation
  const implied = epoch * expect.stepsPerEpoch + Math.ceil(position / ga)
  const where = `sampler position (epoch ${epoch}, batch ${position} of ${expect.batchesPerEpoch})`
  if (epoch > expect.epochs || (epoch === expect.epochs && position !== 0) || position > expect.batchesPerEpoch)
    fail(`its ${where} lies outside the plan's ${expect.epochs} epochs of ${expect.batchesPerEpoch} batches`)
  if ((position % ga !== 0 && position !== expect.batchesPerEpoch) || implied !== state.step)
    fail(`step ${state.step} does not match its ${where}, which implies step ${implied} (gradient accumulation ${ga})`)
  if (expect.sampler) {
    const rng = epochRngAt(expect.sampler, epoch)
    if (rng !== state.sampler.epochRng) fail(`its sampler RNG state ${state.sampler.epochRng} is not the one epoch ${epoch} of this run starts with (${rng})`)
  }
  let previous = 0
  for (const h of state.history) {
    if (h.step <= previous || h.step > state.step) fail(`history: step ${h.step} is out of order or beyond the checkpoint's step ${state.step}`)
    previous = h.step
  }
  for (const p of state.probe?.history ?? []) if (p.step > state.step) fail(`probe history: a measurement at step ${p.step} is beyond the checkpoint's step ${state.step}`)
  if (state.data) {
    if (state.data.length !== expect.data.length) fail(`the checkpoint trained on ${state.data.length} datasets, this configuration has ${expect.data.length}`)
    state.data.forEach((was, i) => {
      const now = expect.data[i]!
      if (was.rows !== now.rows || (was.digest !== undefined && now.digest !== undefined && was.digest !== now.digest))
        fail(
          `dataset ${i + 1} (${now.name}) changed since the checkpoint was written: ` +
            (was.rows !== now.rows ? `${was.rows} usable rows then, ${now.rows} now` : `its content checksum was ${was.digest}, it is ${now.digest}`) +
            '; a resumed run must see the same data (train without --resume to start over)',
        )
    })
  }
}

/**
 * Checks AdamW's saved moments against the model's parameters (an `m.<name>` and `v.<name>` of the
 * parameter's shape each) and its step count against the state's (no more updates than steps; fewer
 * when batches were skipped).
 */
export function checkOptimizerState(
  moments: {step: number; tensors: Map<string, {shape: number[]}>},
  parameters: Map<string, {shape: number[]}>,
  stateStep: number,
  dir: string,
): void {
  const file = join(dir, OPTIMIZER_FILE)
  if (moments.step > stateStep) throw new CheckpointError(`${file}: the optimizer made ${moments.step} updates, more than the ${stateStep} steps ${TRAINER_STATE_FILE} records`)
  for (const [name, p] of parameters) {
    for (const kind of ['m', 'v']) {
      const saved = moments.tensors.get(`${kind}.${name}`)
      if (!saved) throw new CheckpointError(`${file}: no tensor "${kind}.${name}" for the model's parameter ${name}`)
      if (saved.shape.join(',') !== p.shape.join(','))
        throw new CheckpointError(`${file}: tensor "${kind}.${name}" has shape [${saved.shape.join(', ')}], the model's parameter [${p.shape.join(', ')}]`)
    }
  }
}
