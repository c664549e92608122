/**
 * Gradient registration for training. tfjs-core registers no kernel gradients on its own; codiemb's
 * own gradients (src/tensor/gradients.ts) fill tfjs's process-global gradient registry, which every
 * backend (cpu, tensorflow, torch) shares. Anything that differentiates calls `ensureGradients()`
 * first (selecting a backend does too).
 */
import {registerGradients} from '../tensor/gradients.js'

export async function ensureGradients(): Promise<void> {
  registerGradients()
}
