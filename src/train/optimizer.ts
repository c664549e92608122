/**
 * AdamW with a linear warm-up / linear decay schedule and global-norm gradient clipping.
 *
 * Written out rather than taken from tf.train because the trainer must save and restore the exact
 * optimizer state (first and second moments, step count) in checkpoints, and because tf.train has
 * no decoupled weight decay. Update, per parameter θ with gradient g at step t (1-based), in the
 * PyTorch AdamW order:
 *   θ ← θ − lr·λ·θ                      (decoupled weight decay, skipped for biases and norms)
 *   m ← β1·m + (1−β1)·g,   v ← β2·v + (1−β2)·g²
 *   θ ← θ − lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + ε)
 */
import * as tf from '@tensorflow/tfjs-core'
import {adamwUpdate} from '../tensor/ops.js'

export interface AdamWOptions {
  learningRate: number
  beta1: number
  beta2: number
  epsilon: number
  weightDecay: number
}

export interface ScheduleOptions {
  /** Peak learning rate. */
  learningRate: number
  warmupSteps: number
  totalSteps: number
}

/** Linear warm-up from 0 to the peak over warmupSteps, then linear decay to 0 at totalSteps. */
export function learningRateAt(step: number, schedule: ScheduleOptions): number {
  const {learningRate, warmupSteps, totalSteps} = schedule
  if (warmupSteps > 0 && step < warmupSteps) return (learningRate * (step + 1)) / warmupSteps
  const decaySteps = Math.max(1, totalSteps - warmupSteps)
  return learningRate * Math.max(0, (totalSteps - step) / decaySteps)
}

/** Parameters that conventionally get no weight decay: biases and normalisation weights. */
export function decays(name: string): boolean {
  return !/(^|\.)bias$|LayerNorm|layer_norm|(^|\.)norm/.test(name)
}

/**
 * Scales gradients in place so their global L2 norm is at most maxNorm (no-op when maxNorm ≤ 0).
 * Returns the norm before clipping.
 */
export function clipByGlobalNorm(grads: Map<string, tf.Tensor>, maxNorm: number): number {
  // One gradient's squares at a time (each in its own tidy), not all of them at once: the same sums,
  // without a transient copy of every gradient at the optimizer step.
  const sums = [...grads.values()].map((g) => tf.tidy(() => tf.sum(tf.square(g))))
  const norm = tf.tidy(() => tf.sqrt(tf.addN(sums)))
  tf.dispose(sums)
  const value = norm.dataSync()[0]
  norm.dispose()
  if (maxNorm > 0 && value > maxNorm) {
    const scale = maxNorm / (value + 1e-6)
    for (const [name, g] of grads) {
      grads.set(name, tf.mul(g, scale))
      g.dispose()
    }
  }
  return value
}

export class AdamW {
  step = 0
  readonly m = new Map<string, tf.Variable>()
  readonly v = new Map<string, tf.Variable>()

  constructor(private readonly params: Map<string, tf.Variable>, private readonly options: AdamWOptions) {
    for (const [name, p] of params) {
      // Unnamed: tfjs variable names are process-global, and several optimizers may coexist.
      this.m.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)))
      this.v.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)))
    }
  }

  /**
   * Applies one update with learning rate `lr` (from the schedule). Disposes nothing it did not create.
   * All parameters go through one fused AdamW call (src/tensor/ops.ts): one native loop on the torch
   * backend, the same formula in tfjs ops elsewhere.
   */
  apply(grads: Map<string, tf.Tensor>, lr: number): void {
    this.step++
    const {beta1, beta2, epsilon, weightDecay} = this.options
    const names = [...this.params.keys()]
    adamwUpdate(
      names.map((n) => this.params.get(n)!),
      names.map((n) => grads.get(n)),
      names.map((n) => this.m.get(n)!),
      names.map((n) => this.v.get(n)!),
      {learningRate: lr, beta1, beta2, epsilon, weightDecay: names.map((n) => (weightDecay > 0 && decays(n) ? weightDecay : 0)), step: this.step},
    )
  }

  /** Moments as plain arrays (for checkpoints). */
  async exportState(): Promise<{step: number; tensors: {name: string; shape: number[]; data: Float32Array}[]}> {
    const tensors: {name: string; shape: number[]; data: Float32Array}[] = []
    for (const [name, m] of this.m) {
      tensors.push({name: `m.${name}`, shape: m.shape, data: (await m.data()) as Float32Array})
      const v = this.v.get(name)!
      tensors.push({name: `v.${name}`, shape: v.shape, data: (await v.data()) as Float32Array})
    }
    return {step: this.step, tensors}
  }

  importState(step: number, tensors: Map<string, {shape: number[]; data: Float32Array}>): void {
    for (const [kind, moments] of [['m', this.m], ['v', this.v]] as const) {
      for (const [name, variable] of moments) {
        const saved = tensors.get(`${kind}.${name}`)
        if (!saved) throw new Error(`optimizer state has no ${kind}.${name}`)
        if (saved.shape.join(',') !== variable.shape.join(','))
          throw new Error(`optimizer state ${kind}.${name} has shape [${saved.shape}], the model [${variable.shape}]`)
        tf.tidy(() => variable.assign(tf.tensor(saved.data, saved.shape)))
      }
    }
    this.step = step
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose()
  }
}
