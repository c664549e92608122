/**
 * How the ops of ./ops.ts and ./attention-op.ts call kernels: whether the active backend has a fused
 * kernel, running one by name, and a multi-output backward kernel shared by its inputs' gradients.
 */
import * as tf from '@tensorflow/tfjs-core'
import {FUSED} from './fused-names.js'

/** True when the active backend implements `kernel` (fused path), false for the composite path. */
export function hasKernel(kernel: string): boolean {
  return tf.getKernel(kernel, tf.getBackend()) != null
}

/** True when the active backend runs codiemb's fused kernels. */
export function fusedKernelsActive(): boolean {
  return hasKernel(FUSED.attention)
}

/**
 * Whether the composites use their cpu-backend formulations. tfjs's pure-JS cpu kernels are 5-15x
 * slower on broadcasting element-wise ops (per-element index arithmetic) than on same-shape ones,
 * while small matmuls are cheap; so on cpu per-row statistics and their broadcasts are formed with
 * matmuls against ones vectors. On native backends broadcasting is free and the plain formulation is
 * better.
 */
export function cpuFastPaths(): boolean {
  return tf.getBackend() === 'cpu'
}

export const run = (name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown> = {}): any =>
  tf.engine().runKernel(name, inputs as any, attrs as any)

/**
 * Runs a multi-output backward kernel once, in the gradient's own scope (tfjs calls each input's
 * gradient inside a tidy, which would dispose the outputs computed for the other inputs).
 */
export function eagerGrads(compute: () => tf.Tensor[]): (i: number) => () => tf.Tensor {
  const out = compute()
  return (i) => () => out[i]!
}
