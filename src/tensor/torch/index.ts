import * as tf from '@tensorflow/tfjs-core'
import {availableParallelism} from 'node:os'
import {loadTorchAddon, type TorchInfo} from './addon.js'
import {TorchBackend} from './backend.js'
import {TORCH_BACKEND_NAME} from './kernels/index.js'
import './fused.js'
import '../ops.js'

export {TorchBackend} from './backend.js'
export {loadTorchAddon, torchAddonPath, type TorchAddon, type TorchHandle, type TorchInfo} from './addon.js'
export {TORCH_BACKEND_NAME, torchKernelNames} from './kernels/index.js'

export interface TorchBackendOptions {
  /** `cpu`, `cuda` or `cuda:N`. */
  device?: string
  /**
   * Matmul precision: `fp32` (default) full float32; `tf32` lets CUDA use TF32 tensor cores (no effect
   * on CPU); `bf16` runs matrix products in bfloat16 with float32 weights, other kernels and loss
   * (autocast-style; fast on GPUs with bf16 tensor cores, usually slower on CPUs without AMX).
   */
  precision?: 'fp32' | 'tf32' | 'bf16'
  /** Intra-op threads for CPU kernels (default: CODIEMB_TORCH_THREADS, else all cores). */
  threads?: number
}

let registeredDevice: string | undefined
let registeredPrecision: string | undefined

/** Normalises `cuda` to `cuda:0` and checks the device exists. */
export function resolveTorchDevice(device: string | undefined, info: TorchInfo): string {
  const d = (device ?? 'cpu').trim().toLowerCase()
  if (d === 'cpu') return 'cpu'
  const m = /^cuda(?::(\d+))?$/.exec(d)
  if (!m) throw new Error(`unknown torch device "${device}" (expected cpu, cuda or cuda:N)`)
  const index = Number(m[1] ?? 0)
  if (!info.cudaAvailable) {
    throw new Error(
      info.builtWithCuda
        ? `torch device ${d} requested but libtorch sees no CUDA device (driver missing or CUDA_VISIBLE_DEVICES empty)`
        : `torch device ${d} requested but the addon was built against a CPU-only libtorch (rebuild with a CUDA PyTorch/libtorch: npm run build:torch)`,
    )
  }
  if (index >= info.cudaDeviceCount) throw new Error(`torch device ${d} requested but only ${info.cudaDeviceCount} CUDA device(s) exist`)
  return `cuda:${index}`
}

/**
 * Registers the `torch` tfjs backend on `device` (once per process; a second call with another device
 * is an error, since tfjs keeps one instance per name) and returns the backend name.
 */
export function registerTorchBackend(options: TorchBackendOptions = {}): string {
  const addon = loadTorchAddon()
  const device = resolveTorchDevice(options.device, addon.info())
  const precision = options.precision ?? 'fp32'
  if (!['fp32', 'tf32', 'bf16'].includes(precision)) throw new Error(`unknown precision "${precision}" (expected fp32, tf32 or bf16)`)
  if (registeredDevice !== undefined) {
    if (registeredDevice !== device) throw new Error(`the torch backend is already registered on ${registeredDevice}; cannot switch to ${device} in the same process`)
    if (registeredPrecision !== precision) throw new Error(`the torch backend is already registered with precision ${registeredPrecision}; cannot switch to ${precision} in the same process`)
    return TORCH_BACKEND_NAME
  }
  const threads = options.threads ?? (Number(process.env.CODIEMB_TORCH_THREADS) || availableParallelism())
  if (threads > 0) addon.setNumThreads(threads)
  addon.setAllowTF32(precision === 'tf32')
  // Priority 0: tfjs never picks torch by itself; codiemb selects it explicitly.
  tf.registerBackend(TORCH_BACKEND_NAME, () => new TorchBackend(device, {bf16Matmul: precision === 'bf16'}), 0)
  registeredDevice = device
  registeredPrecision = precision
  return TORCH_BACKEND_NAME
}
