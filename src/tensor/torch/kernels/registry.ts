/**
 * How the torch backend's kernels register, and the helpers they share. Each kernel is a tfjs kernel
 * for the backend name `torch`, implemented with ATen operators through the addon's
 * boxed-dispatcher calls.
 */
import * as tf from '@tensorflow/tfjs-core'
import type {TorchHandle} from '../addon.js'
import type {TorchBackend} from '../backend.js'

type Inputs = Record<string, tf.TensorInfo> & tf.TensorInfo[]
type Attrs = Record<string, any>
export type KernelImpl = (b: TorchBackend, inputs: Inputs, attrs: Attrs) => tf.TensorInfo | tf.TensorInfo[]

export const TORCH_BACKEND_NAME = 'torch'
const registered: string[] = []

/**
 * Registers a kernel for the torch backend: ATen results made inside it are temporaries, released as
 * it returns unless they became outputs or stashed state. The kernel files here and fused.ts
 * register through it.
 */
export function registerTorchKernel(kernelName: string, impl: KernelImpl): void {
  registered.push(kernelName)
  tf.registerKernel({
    kernelName,
    backendName: TORCH_BACKEND_NAME,
    kernelFunc: ({inputs, attrs, backend}) => {
      const b = backend as TorchBackend
      const mark = b.tempMark()
      try {
        return impl(b, inputs as Inputs, attrs as Attrs) as any
      } finally {
        b.releaseTemps(mark)
      }
    },
  })
}

/** The kernel names this backend implements, in registration order. */
export function torchKernelNames(): string[] {
  return [...registered]
}

/** The ATen tensor behind a tfjs tensor of the backend (float32 for a bfloat16-stored one). */
export const h = (b: TorchBackend, t: tf.TensorInfo): TorchHandle => b.handleOf(t)

/**
 * The ATen tensor as stored (bfloat16 for a bf16 activation): for kernels that compute in their
 * input's dtype, as torch.autocast runs them (backend.ts bf16Activations), and take mixed inputs.
 */
export const hs = (b: TorchBackend, t: tf.TensorInfo): TorchHandle => b.storedHandleOf(t)

/**
 * Several inputs to one ATen op that wants one dtype (cat, stack): as stored when all are bfloat16
 * or none is, else all float32.
 */
export const sameStored = (b: TorchBackend, ts: tf.TensorInfo[]): TorchHandle[] => {
  const bf16 = ts.filter((t) => b.isBf16(t)).length
  return ts.map((t) => (bf16 === ts.length ? b.storedHandleOf(t) : b.handleOf(t)))
}

/** A tfjs axis attribute (one axis, several, or undefined for all) as non-negative axes of `shape`. */
export const axesOf = (axis: number | number[] | undefined, shape: number[]): number[] => tf.util.parseAxisParam(axis ?? null as any, shape)
