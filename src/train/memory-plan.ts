/**
 * The memory plan of a training run: per task, the estimated peak memory of one step at its largest
 * (the task's batch size, every text at its maximum length) on the chosen device, with and without
 * activation checkpointing and GradCache chunking (formula: memory-estimate.ts); whether it fits the
 * device; and the GradCache chunk size `ir-infonce`'s `cache.chunkSize: auto` resolves to.
 *
 * A step may use USABLE_FRACTION of the device: the rest is left to what the estimate does not count
 * (the runtime, CUDA context and allocator caching, Node's heap, tokenizer buffers).
 *
 * `auto` is resolved once, when training starts, by rank 0 of the run's processes and broadcast to
 * the others (ProcessGroup: multi-process training does not exist yet, so the group is always the
 * single process); the trainer records the value in its checkpoints and a resume reuses it, since
 * the chunks decide the dropout seeds.
 */
import {formatBytes} from '../core/bytes.js'
import {bf16ActivationsAt} from '../tensor/storage.js'
import type {MemoryPlan, MemoryVariant, TaskMemory} from '../core/events.js'
import type {Registry} from '../registry/registry.js'
import type {EncoderArchitecture, HfConfig} from '../model/architecture.js'
import {modelShape, type ModelSource} from '../model/shape.js'
import {estimateStep, modelMemory, type ModelMemory, type Pass, type StepShape} from './memory-estimate.js'
import type {TrainSetup} from './setup.js'
import {epochBatchesOf, hasMultiPartBatch} from './samplers/outline.js'

/** The share of the device's memory a step may use. */
export const USABLE_FRACTION = 0.9

/** The device a plan is for: the backend's report (src/tensor/backend.ts DeviceMemory) or --device-memory. */
export interface PlanDevice {
  backend: string
  device: string
  precision: string
  totalBytes?: number
  source: string
  fusedKernels: boolean
}

/** Where a run will train: the backend and device as the command line names them, and --device-memory. */
export interface MemoryTarget {
  /** A registered backend name, or `auto`. */
  backend: string
  device?: string
  precision?: 'fp32' | 'tf32' | 'bf16'
  /** Plan for this many bytes instead of what the backend reports (e.g. a device that is not here). */
  deviceMemory?: number
}

/**
 * The device a target plans for. With --device-memory and a named backend nothing is probed (so a
 * plan can be made for hardware this machine lacks; codiemb's fused kernels are assumed for
 * `torch`); otherwise the backend `auto` or the name selects reports its device's memory.
 */
export async function planDevice(registry: Registry, target: MemoryTarget): Promise<PlanDevice> {
  const precision = target.precision ?? 'fp32'
  if (target.deviceMemory !== undefined && target.backend !== 'auto') {
    const device = target.device === 'cuda' ? 'cuda:0' : (target.device ?? 'cpu')
    return {backend: target.backend, device, precision, totalBytes: target.deviceMemory, source: '--device-memory', fusedKernels: target.backend === 'torch'}
  }
  const {backendDeviceMemory} = await import('../tensor/backend.js')
  const reported = await backendDeviceMemory(registry, target.backend, {device: target.device, precision})
  const {backend, device, fusedKernels} = reported
  if (target.deviceMemory !== undefined) return {backend, device, precision, totalBytes: target.deviceMemory, source: '--device-memory', fusedKernels}
  return {backend, device, precision, totalBytes: reported.totalBytes, source: reported.source, fusedKernels}
}

/** The memory plan of a set-up run whose model is `model` (a directory or a random-init spec; no weights are read). */
export async function planTrainingMemory(setup: TrainSetup, model: ModelSource, registry: Registry, target: MemoryTarget | PlanDevice): Promise<MemoryPlan> {
  const device = 'fusedKernels' in target ? target : await planDevice(registry, target)
  return planMemory(setup, await modelShape(model, registry), device)
}

/**
 * The processes of one training run (the seam for multi-process, data-parallel training, which
 * codiemb does not have yet): a value decided on rank 0 is broadcast to every rank.
 */
export interface ProcessGroup {
  rank: number
  size: number
  broadcast<T>(value: T): Promise<T>
}

/** The only group there is today: this process. */
export const SINGLE_PROCESS: ProcessGroup = {rank: 0, size: 1, broadcast: async (value) => value}

/** A task's step shape without the variant settings (checkpointing, chunk size). */
type TaskStep = Omit<StepShape, 'checkpointing' | 'chunkSize'> & {task: 'ir' | 'sts'}

/** The steps of the tasks present: the task's batch at maximum length, per embedding pass. */
function taskSteps(setup: Pick<TrainSetup, 'section' | 'sampler' | 'objectives'>, model: ModelMemory, fusedKernels: boolean, bf16Activations: boolean): TaskStep[] {
  const {section, sampler, objectives} = setup
  const maxLen = (n: number) => Math.min(n, model.arch.maxSequenceLength(model.config))
  const multiPart = hasMultiPartBatch(epochBatchesOf(sampler))
  const base = {
    accumulates: section.gradientAccumulation > 1 || multiPart,
    dropout: section.dropout,
    kernels: fusedKernels ? ('fused' as const) : ('composite' as const),
    ...(bf16Activations ? {bf16Activations} : {}),
  }
  const steps: TaskStep[] = []
  if (objectives.ir) {
    const rows = sampler.batchSize('ir')
    const passes: Pass[] = [
      {name: 'queries', rows, seqLen: maxLen(section.tasks.ir.maxLength.query)},
      {name: 'passages', rows: rows * (objectives.ir.positives + objectives.ir.negatives), seqLen: maxLen(section.tasks.ir.maxLength.passage)},
    ]
    steps.push({task: 'ir', passes, ...base})
  }
  if (objectives.sts) {
    const rows = sampler.batchSize('sts')
    const seqLen = maxLen(section.tasks.sts.maxLength)
    steps.push({task: 'sts', passes: [{name: 'texts1', rows, seqLen}, {name: 'texts2', rows, seqLen}], ...base})
  }
  return steps
}

/**
 * The largest GradCache chunk size (at most the largest pass's rows) whose step fits `usableBytes`,
 * or undefined when not even one row does. The estimate grows with the chunk size: binary search.
 */
export function largestFittingChunk(model: ModelMemory, step: Omit<StepShape, 'chunkSize'>, usableBytes: number): number | undefined {
  const fits = (chunkSize: number) => estimateStep(model, {...step, chunkSize}).peakBytes <= usableBytes
  let lo = 0
  let hi = Math.max(...step.passes.map((p) => p.rows))
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (fits(mid)) lo = mid
    else hi = mid - 1
  }
  return lo > 0 ? lo : undefined
}

/** Plans the run's memory on `device` for a model of this architecture and config. */
export function planMemory(setup: Pick<TrainSetup, 'section' | 'sampler' | 'objectives'>, shape: {arch: EncoderArchitecture; config: HfConfig}, device: PlanDevice): MemoryPlan {
  const lora = setup.section.lora
  const model = modelMemory(shape.arch, shape.config, lora && {rank: lora.rank ?? 16, targetModules: lora.targetModules ?? 'all-linear', dropout: lora.dropout ?? 0})
  const P = model.parameters
  const T = model.lora?.trainable ?? P
  const usableBytes = device.totalBytes === undefined ? undefined : Math.floor(device.totalBytes * USABLE_FRACTION)
  const checkpointing = setup.section.gradientCheckpointing
  const configuredChunk = setup.objectives.ir?.cacheChunkSize
  const warnings: string[] = []
  if (!shape.arch.activationMemory) warnings.push(`the ${shape.config.model_type} encoder reports no activation memory: the estimates count parameters, gradients and optimizer state only`)
  const variant = (step: TaskStep, ckpt: boolean, chunkSize?: number): MemoryVariant => {
    const e = estimateStep(model, {...step, checkpointing: ckpt, chunkSize})
    return {checkpointing: ckpt, chunkSize, activationBytes: e.activationBytes, peakBytes: e.peakBytes, fits: usableBytes === undefined ? undefined : e.peakBytes <= usableBytes}
  }
  let autoChunkSize: number | undefined
  const tasks: TaskMemory[] = []
  // As the torch backend decides it (src/tensor/torch/backend.ts bf16Activations).
  const bf16Activations = device.backend === 'torch' && device.fusedKernels && bf16ActivationsAt(device.precision)
  for (const step of taskSteps(setup, model, device.fusedKernels, bf16Activations)) {
    let chunk: number | undefined
    if (step.task === 'ir' && configuredChunk === 'auto') {
      if (usableBytes === undefined) warnings.push(`ir-infonce cache.chunkSize auto: the memory of ${device.device} is unknown (${device.source}); pass --device-memory`)
      else {
        autoChunkSize = largestFittingChunk(model, {...step, checkpointing}, usableBytes)
        if (autoChunkSize === undefined) {
          autoChunkSize = 1
          warnings.push(`ir-infonce cache.chunkSize auto: not even a chunk of 1 text fits ${formatBytes(usableBytes)}; using 1`)
        }
      }
      chunk = autoChunkSize
    } else if (step.task === 'ir' && typeof configuredChunk === 'number') chunk = configuredChunk
    const shown = step.task === 'ir' ? (chunk ?? Math.min(32, Math.max(...step.passes.map((p) => p.rows)))) : undefined
    const chunks = shown === undefined ? [undefined] : [undefined, shown]
    const variants = [false, true].flatMap((ckpt) => chunks.map((c) => variant(step, ckpt, c)))
    const configured = variant(step, checkpointing, chunk)
    tasks.push({task: step.task, passes: step.passes, configured, variants})
    if (configured.fits === false) {
      const better = variants.filter((v) => v.fits).sort((a, b) => a.peakBytes - b.peakBytes)[0]
      const hint = better ? `; fits with ${describeVariant(better)} (${formatBytes(better.peakBytes)})` : '; no variant fits: lower the batch size or maximum length'
      warnings.push(`${step.task}: a step needs about ${formatBytes(configured.peakBytes)}, more than the ${formatBytes(usableBytes!)} usable of ${device.device}${hint}`)
    }
  }
  return {
    backend: device.backend,
    device: device.device,
    precision: device.precision,
    kernels: device.fusedKernels ? 'fused' : 'composite',
    ...(bf16Activations ? {bf16Activations} : {}),
    deviceBytes: device.totalBytes,
    deviceSource: device.source,
    usableBytes,
    parameters: P,
    ...(model.lora ? {trainableParameters: T} : {}),
    parameterBytes: 4 * P + (model.lora ? 4 * T : 0),
    gradientBytes: 4 * T,
    optimizerBytes: 8 * T,
    tasks,
    autoChunkSize,
    warnings,
  }
}

function describeVariant(v: MemoryVariant): string {
  return `${v.checkpointing ? 'gradientCheckpointing' : 'no checkpointing'}${v.chunkSize ? `, GradCache chunk ${v.chunkSize}` : ''}`
}

/** The plan as lines of text (what `codiemb train --dry-run` prints). */
export function memoryPlanLines(plan: MemoryPlan): string[] {
  const device = plan.deviceBytes === undefined ? `memory unknown (${plan.deviceSource})` : `${formatBytes(plan.deviceBytes)} (${plan.deviceSource}), ${formatBytes(plan.usableBytes!)} usable`
  const lines = [
    `memory: ${plan.backend} on ${plan.device}, ${plan.precision} (${plan.kernels} kernels; float32 weights, ${plan.bf16Activations ? 'bfloat16 activations' : 'float32 activations'}); device ${device}`,
    `  ${(plan.parameters / 1e6).toFixed(1)}M parameters${plan.trainableParameters !== undefined ? ` (LoRA: ${(plan.trainableParameters / 1e6).toFixed(2)}M trainable, the rest frozen)` : ''}: ${formatBytes(plan.parameterBytes)} + gradients ${formatBytes(plan.gradientBytes)} + AdamW moments ${formatBytes(plan.optimizerBytes)}`,
  ]
  for (const t of plan.tasks) {
    const c = t.configured
    const verdict = c.fits === undefined ? '' : c.fits ? ' — fits' : ' — does NOT fit'
    lines.push(
      `  ${t.task} step (${t.passes.map((p) => `${p.name} ${p.rows} × ${p.seqLen}`).join(', ')} tokens): peak ${formatBytes(c.peakBytes)}, activations ${formatBytes(c.activationBytes)} (${describeVariant(c)})${verdict}`,
    )
    lines.push(`    ${t.variants.map((v) => `${describeVariant(v)}: ${formatBytes(v.peakBytes)}`).join('; ')}`)
  }
  if (plan.autoChunkSize !== undefined) lines.push(`  ir-infonce cache.chunkSize auto → ${plan.autoChunkSize}`)
  return lines
}
