import type {Registry} from '../registry/registry.js'
import {CodiembError} from '../core/errors.js'

export const BACKEND_CHOICES = ['auto', 'cpu', 'tensorflow', 'torch'] as const
export type BackendChoice = (typeof BACKEND_CHOICES)[number]

/** What probing a tensor backend found. */
export interface BackendProbe {
  name: string
  available: boolean
  /** Why it is (not) available, in words a user can act on. */
  reason: string
  /** Extra facts (library version, devices) for `codiemb doctor`. */
  detail?: Record<string, unknown>
}

export interface BackendInitOptions {
  /** `cpu`, `cuda`, `cuda:N` — meaningful for backends with devices (torch). */
  device?: string
  precision?: 'fp32' | 'tf32' | 'bf16'
}

/** The memory of the device a backend computes on, for memory planning. */
export interface DeviceMemory {
  /** `cpu`, `cuda:0`, … */
  device: string
  /** Total bytes (undefined when the backend cannot tell). */
  totalBytes?: number
  /** Where totalBytes came from, in words (e.g. "os.totalmem()", "CUDA driver"). */
  source: string
  /** Whether the backend runs codiemb's fused kernels (src/tensor/ops.ts), which keep less for backward. */
  fusedKernels: boolean
}

/**
 * The implementation behind a registry entry of kind `backend`. `probe` must be cheap and must not
 * throw; `init` registers the tfjs backend (tf.registerBackend) if needed and returns the tfjs
 * backend name to pass to tf.setBackend. `deviceMemory` (optional) reports the memory of the device
 * `init` would use with the same options, without initialising anything.
 */
export interface TensorBackendPlugin {
  probe(): Promise<BackendProbe>
  init(options: BackendInitOptions): Promise<string>
  deviceMemory?(options: BackendInitOptions): Promise<DeviceMemory>
}

/** Host memory: what the cpu and tensorflow backends (and torch on the CPU) compute in. */
export async function hostMemory(fusedKernels: boolean): Promise<DeviceMemory> {
  const {totalmem} = await import('node:os')
  return {device: 'cpu', totalBytes: totalmem(), source: 'os.totalmem()', fusedKernels}
}

/** The order in which `auto` tries backends: fastest first, the pure-JS fallback last. */
export const AUTO_ORDER = ['tensorflow', 'torch', 'cpu']

export interface BackendSelection {
  name: string
  reason: string
  probes: BackendProbe[]
}

export class BackendUnavailableError extends CodiembError {
  override name = 'BackendUnavailableError'
}

export async function probeBackends(registry: Registry): Promise<BackendProbe[]> {
  const out: BackendProbe[] = []
  for (const entry of registry.list('backend')) {
    try {
      const impl = (await entry.load()) as TensorBackendPlugin
      out.push(await impl.probe())
    } catch (error) {
      out.push({name: entry.name, available: false, reason: `probe failed: ${(error as Error).message}`})
    }
  }
  return out
}

/**
 * Picks, initialises and activates a tensor backend. `auto` takes the first available backend in
 * AUTO_ORDER (then any other registered one); a named backend that is unavailable is an error that
 * carries the probe's reason.
 */
export async function selectBackend(
  registry: Registry,
  requested: string = process.env.CODIEMB_BACKEND || 'auto',
  options: BackendInitOptions = {},
): Promise<BackendSelection> {
  const {chosen, reason, probes} = await chooseBackend(registry, requested)
  const impl = await registry.load<TensorBackendPlugin>('backend', chosen.name)
  let tfName: string
  try {
    tfName = await impl.init(options)
  } catch (error) {
    // A named backend that cannot start with these options (unknown device, unsupported precision).
    throw new BackendUnavailableError(`tensor backend ${chosen.name}: ${(error as Error).message}`)
  }
  const tf = await import('@tensorflow/tfjs-core')
  quietTfjs(tf)
  // Every backend shares tfjs's gradient registry; fill it before anything differentiates.
  const {registerGradients} = await import('./gradients.js')
  registerGradients()
  const ok = await tf.setBackend(tfName)
  if (!ok) throw new BackendUnavailableError(`tensor backend ${chosen.name} failed to initialise (tf.setBackend("${tfName}") returned false)`)
  await tf.ready()
  return {name: chosen.name, reason, probes}
}

/**
 * The device memory of the backend `selectBackend` would pick for these arguments, without
 * initialising it: the backend's name and its `deviceMemory` report (a backend without one reports
 * no total and composite kernels).
 */
export async function backendDeviceMemory(
  registry: Registry,
  requested: string = process.env.CODIEMB_BACKEND || 'auto',
  options: BackendInitOptions = {},
): Promise<DeviceMemory & {backend: string}> {
  const {chosen} = await chooseBackend(registry, requested)
  const impl = await registry.load<TensorBackendPlugin>('backend', chosen.name)
  if (!impl.deviceMemory) return {backend: chosen.name, device: options.device ?? 'unknown', source: `the ${chosen.name} backend does not report its memory`, fusedKernels: false}
  try {
    return {backend: chosen.name, ...(await impl.deviceMemory(options))}
  } catch (error) {
    throw new BackendUnavailableError(`tensor backend ${chosen.name}: ${(error as Error).message}`)
  }
}

/** The backend `requested` names (or `auto`'s pick among the available ones), with the reason. */
async function chooseBackend(registry: Registry, requested: string): Promise<{chosen: BackendProbe; reason: string; probes: BackendProbe[]}> {
  const probes = await probeBackends(registry)
  let chosen: BackendProbe | undefined
  let reason: string
  if (requested === 'auto') {
    const ordered = [...probes].sort((a, b) => rank(a.name) - rank(b.name))
    chosen = ordered.find((p) => p.available)
    const skipped = ordered.filter((p) => p !== chosen && rank(p.name) < rank(chosen?.name ?? '')).map((p) => `${p.name}: ${p.reason}`)
    reason = chosen ? `auto: chose ${chosen.name} (${chosen.reason})${skipped.length ? `; skipped ${skipped.join('; ')}` : ''}` : ''
  } else {
    chosen = probes.find((p) => p.name === requested)
    if (!chosen) {
      throw new BackendUnavailableError(
        `unknown tensor backend "${requested}"; known: auto, ${probes.map((p) => p.name).join(', ')}`,
      )
    }
    if (!chosen.available) throw new BackendUnavailableError(`tensor backend ${requested} is not available: ${chosen.reason}`)
    reason = `requested: ${chosen.reason}`
  }
  if (!chosen) throw new BackendUnavailableError(`no tensor backend is available: ${probes.map((p) => `${p.name}: ${p.reason}`).join('; ')}`)
  return {chosen, reason, probes}
}

function rank(name: string): number {
  const i = AUTO_ORDER.indexOf(name)
  return i === -1 ? AUTO_ORDER.length - 0.5 : i
}

/** tfjs prints a banner recommending tfjs-node on first use in Node; codiemb reports backends itself. */
export function quietTfjs(tf: typeof import('@tensorflow/tfjs-core')): void {
  tf.env().set('PROD', true)
}
