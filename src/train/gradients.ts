/**
 * Gradients for training: their registration, and the running sum of parameter gradients that
 * gradient accumulation, GradCache and `Trainer.gradientsOf` build.
 *
 * tfjs-core registers no kernel gradients on its own; codiemb's own gradients
 * (src/tensor/gradients.ts) fill tfjs's process-global gradient registry, which every backend (cpu,
 * tensorflow, torch) shares. Anything that differentiates calls `ensureGradients()` first (selecting
 * a backend does too).
 */
import * as tf from '@tensorflow/tfjs-core'
import {registerGradients} from '../tensor/gradients.js'

export async function ensureGradients(): Promise<void> {
  registerGradients()
}

/**
 * total[name] ← total[name] + scale · g for each (name, g) in `grads` (a missing entry starts at
 * scale · g). The addends and the replaced sums are disposed, so at most one sum per parameter is
 * alive. With scale 1 the gradient is added as it is (no multiply).
 */
export function accumulateGradients(total: Map<string, tf.Tensor>, grads: Iterable<[string, tf.Tensor]>, scale = 1): void {
  for (const [name, g] of grads) {
    let term = g
    if (scale !== 1) {
      term = tf.mul(g, scale)
      g.dispose()
    }
    const previous = total.get(name)
    if (previous) {
      total.set(name, tf.add(previous, term))
      previous.dispose()
      term.dispose()
    } else total.set(name, term)
  }
}
