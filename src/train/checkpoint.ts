/**
 * Training checkpoints: `<dir>/checkpoint-<step>/` is a sentence-transformers model directory
 * (written by the encoder's save()) plus `trainer_state.json` (step, epoch, sampler state, seed,
 * schedule) and `optimizer.safetensors` (AdamW moments). A checkpoint is assembled in a temporary
 * directory beside the final one and renamed into place, so a kill mid-write leaves the previous
 * checkpoints intact and never a half-written `checkpoint-*`; one beyond `keepLast` is renamed away
 * before it is deleted, so a kill never leaves a half-deleted one either.
 */
import {existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {CodiembError} from '../core/errors.js'
import {removeAtomic, removeTemps, tempSiblingPath, writeDirectoryAtomic} from '../core/fs-atomic.js'
import {readJsonFile} from '../core/json-file.js'
import {readSchema} from '../config/schema.js'
import {validateOptions} from '../config/validate.js'
import {firstNonFiniteIndex} from '../io/finite-values.js'
import {openSafetensors} from '../io/safetensors.js'
import {writeSafetensors} from '../io/safetensors-stream.js'
import type {SamplerState} from './samplers/types.js'
import type {AdamW} from './optimizer.js'
import type {ProbeResult} from './events.js'
import type {TrainableEncoder} from './types.js'

export const TRAINER_STATE_FILE = 'trainer_state.json'
export const OPTIMIZER_FILE = 'optimizer.safetensors'
const CHECKPOINT_PATTERN = /^checkpoint-(\d+)$/

export interface TrainerState {
  version: 1
  /** Optimizer steps completed. */
  step: number
  totalSteps: number
  /** Sampler state of the next batch to train on. */
  sampler: SamplerState
  seed: number
  /** Fingerprint of the settings that must not change across a resume. */
  settings: string
  /** Per-step losses so far (for reports and resume checks). */
  history: {step: number; loss: Record<string, number>}[]
  /** Probe-loss measurements so far and the probe options they were taken with (absent without a probe). */
  probe?: {options: {batches: number; seed?: number}; history: ProbeResult[]}
  /**
   * The GradCache chunk size in effect (absent without GradCache). Chunks decide dropout seeds, so a
   * resume keeps it, also where the config says `auto` and the device differs.
   */
  gradCacheChunkSize?: number
  /** Processes of a data-parallel run (absent: 1); a resume needs the same number (train/distributed.ts). */
  worldSize?: number
  /** What `settings` is the fingerprint of, so a refused resume can say what differs (absent in earlier checkpoints). */
  settingsDetail?: Record<string, unknown>
  /** The training datasets in order: usable rows and content identity (absent in earlier checkpoints). */
  data?: {name: string; rows: number; digest?: string}[]
}

/** A checkpoint that cannot be resumed from: missing, damaged or edited files, or one that does not fit this run (exit code 2). */
export class CheckpointError extends CodiembError {
  override name = 'CheckpointError'
}

export function checkpointName(step: number): string {
  return `checkpoint-${step}`
}

/** Existing checkpoints under `dir`, oldest first. */
export function listCheckpoints(dir: string): {step: number; path: string}[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .map((name) => ({name, match: CHECKPOINT_PATTERN.exec(name)}))
    .filter((x) => x.match)
    .map((x) => ({step: Number(x.match![1]), path: join(dir, x.name)}))
    .sort((a, b) => a.step - b.step)
}

/**
 * Writes a checkpoint atomically and keeps only the newest `keepLast` (0 = keep all), except
 * `keep`: the checkpoint a resumed run was loaded from, whose tokenizer files the encoder copies
 * into every checkpoint and the final model when it saves (deleting it would leave those without a
 * tokenizer). Returns its path.
 */
export async function writeCheckpoint(
  dir: string,
  encoder: TrainableEncoder,
  optimizer: AdamW,
  state: TrainerState,
  keepLast: number,
  keep?: string,
): Promise<string> {
  mkdirSync(dir, {recursive: true})
  const final = join(dir, checkpointName(state.step))
  await writeDirectoryAtomic(final, async (staging) => {
    await encoder.save(staging, {extraFiles: {[TRAINER_STATE_FILE]: JSON.stringify(state, null, 1) + '\n'}})
    const moments = await optimizer.exportState()
    await writeSafetensors(join(staging, OPTIMIZER_FILE), moments.tensors, {step: String(moments.step)})
  })
  if (keepLast > 0) for (const old of listCheckpoints(dir).slice(0, -keepLast)) if (!keep || resolve(old.path) !== resolve(keep)) removeAtomic(old.path)
  return final
}

/**
 * Moves every checkpoint under `dir` aside, under temporary names of this process (fs-atomic's
 * scheme), for a run that replaces them: `discard()` deletes them once the new run has written a
 * checkpoint; `restore()` puts them back after a failure. A kill in between leaves temporaries of a
 * dead process, which the next run's claim removes. `count` is how many were moved.
 */
export function setCheckpointsAside(dir: string): {count: number; discard(): void; restore(): void} {
  const moved = listCheckpoints(dir).map((c) => ({path: c.path, aside: tempSiblingPath(c.path)}))
  for (const m of moved) renameSync(m.path, m.aside)
  let pending = true
  return {
    count: moved.length,
    discard() {
      if (pending) for (const m of moved) rmSync(m.aside, {recursive: true, force: true})
      pending = false
    },
    restore() {
      if (pending) for (const m of moved) if (!existsSync(m.path)) renameSync(m.aside, m.path)
      pending = false
    },
  }
}

/**
 * Removes temporary directories left by a run killed while writing a checkpoint (those staged for
 * any `checkpoint-<step>` by another process; this process's own are checkpoints set aside by
 * setCheckpointsAside, or being written).
 */
export function removePartialCheckpoints(dir: string): void {
  removeTemps(dir, (temp) => CHECKPOINT_PATTERN.test(temp.target) && temp.pid !== process.pid)
}

/** Why `dir` is not a checkpoint: it does not exist, it is a folder of checkpoints, or it lacks trainer_state.json. */
function notACheckpoint(dir: string): string {
  if (!existsSync(dir)) return `${dir}: no such checkpoint directory`
  const newest = listCheckpoints(dir).at(-1)
  if (newest) return `${dir} is a folder of checkpoints, not one checkpoint; resume from its newest with --resume ${newest.path}`
  return `${dir}: not a training checkpoint (no ${TRAINER_STATE_FILE}); expected a checkpoint-<step> directory written by \`codiemb train\``
}

let stateSchema: ReturnType<typeof readSchema> | undefined

/**
 * Reads `<dir>/trainer_state.json` and checks it against data-schemas/trainer-state.schema.json;
 * every failure is a CheckpointError naming the file. Whether the state fits the run is resume.ts's
 * checkResumeState.
 */
export function readTrainerState(dir: string): TrainerState {
  const file = join(dir, TRAINER_STATE_FILE)
  if (!existsSync(file)) throw new CheckpointError(notACheckpoint(dir))
  const raw = readJsonFile(file, (reason) => new CheckpointError(`${file}: not valid JSON (${reason}); the checkpoint is damaged`))
  return validateOptions<TrainerState>((stateSchema ??= readSchema('trainer-state.schema.json')), raw, {
    pointer: '',
    subject: `trainer state ${file} (data-schemas/trainer-state.schema.json)`,
    error: (message) => new CheckpointError(message),
  })
}

/** Reads the AdamW moments and step of a checkpoint; a missing or damaged file, or a moment that is not finite, is a CheckpointError naming it. */
export async function readOptimizerState(dir: string): Promise<{step: number; tensors: Map<string, {shape: number[]; data: Float32Array}>}> {
  const path = join(dir, OPTIMIZER_FILE)
  if (!existsSync(path)) throw new CheckpointError(`${path}: missing; the checkpoint is incomplete (expected the optimizer state beside ${TRAINER_STATE_FILE})`)
  const file = await openSafetensors(path)
  try {
    const tensors = new Map<string, {shape: number[]; data: Float32Array}>()
    for (const info of file.tensors()) {
      const t = await file.read(info.name)
      if (!(t.data instanceof Float32Array)) throw new CheckpointError(`${file.path}: tensor "${info.name}" has dtype ${t.dtype}, expected F32`)
      const bad = firstNonFiniteIndex(t.data)
      if (bad >= 0) throw new CheckpointError(`${file.path}: tensor "${info.name}" holds ${t.data[bad]} at index ${bad}; the optimizer state is damaged`)
      tensors.set(info.name, {shape: [...t.shape], data: t.data})
    }
    const step = Number(file.metadata.step)
    if (!(Number.isInteger(step) && step >= 0)) throw new CheckpointError(`${file.path}: __metadata__.step: expected the optimizer's step count, got ${JSON.stringify(file.metadata.step)}`)
    return {step, tensors}
  } finally {
    await file.close()
  }
}
