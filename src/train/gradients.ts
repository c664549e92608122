/**
 * Gradient registration. @tensorflow/tfjs-core's Node bundle registers kernels' forward passes
 * only; the gradient functions (tf.grad, tf.variableGrads, optimizers) are registered by the
 * @tensorflow/tfjs union package into tfjs's process-global gradient registry, which every
 * backend (cpu, tensorflow, torch) shares. Anything that differentiates calls this first.
 */
let loading: Promise<void> | undefined

export function ensureGradients(): Promise<void> {
  loading ??= import('@tensorflow/tfjs').then(() => undefined)
  return loading
}
