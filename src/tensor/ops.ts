/**
 * Fused tensor ops for the encoders and the optimizer, backend-agnostic: on a backend that registers
 * codiemb's fused kernels (the `torch` backend: ATen's gelu, native_layer_norm, softmax backward,
 * native_dropout) each op is one kernel with an analytic gradient; on every other backend (cpu,
 * tensorflow) it is a composite of tfjs ops, differentiated by tfjs. Both paths compute the same
 * function; tests check values and gradients agree.
 *
 * Gradients of the fused kernels are registered here, at import, in tfjs's process-global gradient
 * registry. Call the ops inside tf.tidy / tf.variableGrads like any tfjs op.
 */
import * as tf from '@tensorflow/tfjs-core'
import {FUSED} from './fused-names.js'

export {FUSED} from './fused-names.js'

/** True when the active backend implements `kernel` (fused path), false for the composite path. */
function hasKernel(kernel: string): boolean {
  return tf.getKernel(kernel, tf.getBackend()) != null
}

/** True when the active backend runs codiemb's fused kernels. */
export function fusedKernelsActive(): boolean {
  return hasKernel(FUSED.attention)
}

const run = (name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown> = {}): any =>
  tf.engine().runKernel(name, inputs as any, attrs as any)

// ---------------------------------------------------------------------------------------------
// GELU

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI)

/**
 * GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) ("none", transformers' `gelu`), or the tanh
 * approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) ("tanh", `gelu_new`).
 */
export function gelu(x: tf.Tensor, approximate: 'none' | 'tanh' = 'none'): tf.Tensor {
  if (hasKernel(FUSED.gelu)) return run(FUSED.gelu, {x}, {approximate})
  return tf.tidy(() => {
    if (approximate === 'tanh') {
      const inner = tf.mul(SQRT_2_OVER_PI, tf.add(x, tf.mul(0.044715, tf.mul(x, tf.square(x)))))
      return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)))
    }
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))))
  })
}

// ---------------------------------------------------------------------------------------------
// Layer norm

/**
 * LayerNorm over the last axis: (x - mean) / sqrt(var + epsilon) * gamma + beta, with the biased
 * variance (as PyTorch). gamma and beta have the size of the last axis.
 */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): tf.Tensor {
  if (hasKernel(FUSED.layerNorm)) return run(FUSED.layerNorm, {x, gamma, beta}, {epsilon})
  return tf.tidy(() => {
    const {mean, variance} = tf.moments(x, -1, true)
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon))), gamma), beta)
  })
}

// ---------------------------------------------------------------------------------------------
// Dropout

/**
 * Inverted dropout: zeroes each element with probability `rate` and scales the rest by 1/(1-rate).
 * Identity when rate is 0. The torch path draws its mask with libtorch's generator (seeded by
 * `seed` when given), the composite path with tfjs's; the two do not draw the same mask.
 */
export function dropout(x: tf.Tensor, rate: number, seed?: number): tf.Tensor {
  if (!(rate > 0)) return x
  if (rate >= 1) throw new Error(`dropout rate must be in [0, 1), got ${rate}`)
  if (hasKernel(FUSED.dropout)) return run(FUSED.dropout, {x}, {rate, seed})
  return tf.dropout(x, rate, undefined, seed)
}

// ---------------------------------------------------------------------------------------------
// Scaled dot-product attention

export interface AttentionOptions {
  /** Added to the scores before the softmax; broadcastable to [..., Tq, Tk] (e.g. [B, 1, 1, Tk] with -1e9 on padding). */
  maskBias?: tf.Tensor
  /** Multiplies q k^T (default 1/sqrt(d)). */
  scale?: number
  /** Dropout on the attention probabilities (training only; default 0). */
  dropoutRate?: number
  seed?: number
}

/**
 * softmax(q k^T * scale + maskBias) v for q [..., Tq, d], k and v [..., Tk, d] (typically
 * [batch, heads, tokens, headDim]); returns [..., Tq, d].
 */
export function attention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, options: AttentionOptions = {}): tf.Tensor {
  const scale = options.scale ?? 1 / Math.sqrt(q.shape[q.shape.length - 1]!)
  const dropoutRate = options.dropoutRate ?? 0
  if (hasKernel(FUSED.attention)) {
    const attrs = {scale, dropoutRate, seed: options.seed}
    if (options.maskBias) return run(FUSED.attentionMasked, {q, k, v, maskBias: options.maskBias}, attrs)
    return run(FUSED.attention, {q, k, v}, attrs)
  }
  return tf.tidy(() => {
    let scores = tf.matMul(q, k, false, true)
    if (scale !== 1) scores = tf.mul(scores, scale)
    if (options.maskBias) scores = tf.add(scores, options.maskBias)
    let probs = tf.softmax(scores)
    if (dropoutRate > 0) probs = tf.dropout(probs, dropoutRate, undefined, options.seed)
    return tf.matMul(probs, v)
  })
}

// ---------------------------------------------------------------------------------------------
// AdamW

export interface AdamWHyper {
  learningRate: number
  beta1: number
  beta2: number
  epsilon: number
  /** Decoupled weight decay, one value for all parameters or one per parameter (0 = none). */
  weightDecay: number | number[]
  /** The 1-based step number (bias correction). */
  step: number
}

/** A backend that updates many parameters in one native call (the torch backend). */
interface FusedAdamWBackend {
  adamw(params: tf.Tensor[], grads: tf.Tensor[], m: tf.Tensor[], v: tf.Tensor[], hp: Omit<AdamWHyper, 'weightDecay'> & {weightDecay: number}): [tf.Tensor[], tf.Tensor[], tf.Tensor[]]
}

/**
 * One AdamW step over all parameters at once, assigning params, m and v in place:
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p = p - lr * wd * p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * (decoupled weight decay on the pre-update p, as PyTorch's AdamW). `grads[i]` may be undefined to
 * skip a parameter. The torch backend does the whole update in one native loop.
 */
export function adamwUpdate(params: tf.Variable[], grads: (tf.Tensor | undefined)[], m: tf.Variable[], v: tf.Variable[], hp: AdamWHyper): void {
  if (grads.length !== params.length || m.length !== params.length || v.length !== params.length) {
    throw new Error(`adamwUpdate: params (${params.length}), grads (${grads.length}), m (${m.length}) and v (${v.length}) differ in length`)
  }
  const decayOf = (i: number): number => (Array.isArray(hp.weightDecay) ? hp.weightDecay[i] ?? 0 : hp.weightDecay)
  const backend = tf.backend() as unknown as Partial<FusedAdamWBackend>
  if (typeof backend.adamw === 'function') {
    // Group by weight decay: one native call per distinct value (usually two: decayed and not).
    const groups = new Map<number, number[]>()
    params.forEach((_, i) => {
      if (!grads[i]) return
      const wd = decayOf(i)
      const group = groups.get(wd)
      if (group) group.push(i)
      else groups.set(wd, [i])
    })
    for (const [wd, idx] of groups) {
      const [np, nm, nv] = backend.adamw(idx.map((i) => params[i]!), idx.map((i) => grads[i]!), idx.map((i) => m[i]!), idx.map((i) => v[i]!), {...hp, weightDecay: wd})
      idx.forEach((i, j) => {
        params[i]!.assign(np[j]!)
        m[i]!.assign(nm[j]!)
        v[i]!.assign(nv[j]!)
        np[j]!.dispose()
        nm[j]!.dispose()
        nv[j]!.dispose()
      })
    }
    return
  }
  const c1 = 1 - Math.pow(hp.beta1, hp.step)
  const c2 = 1 - Math.pow(hp.beta2, hp.step)
  params.forEach((p, i) => {
    const g = grads[i]
    if (!g) return
    tf.tidy(() => {
      const newM = tf.add(tf.mul(m[i]!, hp.beta1), tf.mul(g, 1 - hp.beta1))
      const newV = tf.add(tf.mul(v[i]!, hp.beta2), tf.mul(tf.square(g), 1 - hp.beta2))
      const update = tf.div(tf.div(newM, c1), tf.add(tf.sqrt(tf.div(newV, c2)), hp.epsilon))
      const wd = decayOf(i)
      const decayed = wd > 0 ? tf.mul(p, 1 - hp.learningRate * wd) : p
      p.assign(tf.sub(decayed, tf.mul(update, hp.learningRate)))
      m[i]!.assign(newM)
      v[i]!.assign(newV)
    })
  })
}

// ---------------------------------------------------------------------------------------------
// Gradients of the fused kernels (shared by every backend that implements them)

/**
 * Runs a multi-output backward kernel once, in the gradient's own scope (tfjs calls each input's
 * gradient inside a tidy, which would dispose the outputs computed for the other inputs).
 */
function eagerGrads(compute: () => tf.Tensor[]): (i: number) => () => tf.Tensor {
  const out = compute()
  return (i) => () => out[i]!
}

tf.registerGradient({
  kernelName: FUSED.gelu,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => ({x: () => run(FUSED.geluGrad, {dy: dy as tf.Tensor, x: saved[0]!}, attrs as any)}),
})
tf.registerGradient({
  kernelName: FUSED.layerNorm,
  inputsToSave: ['x', 'gamma', 'beta'],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [x, gamma, beta, y] = saved as tf.Tensor[]
    const g = eagerGrads(() => run(FUSED.layerNormGrad, {dy: dy as tf.Tensor, x: x!, gamma: gamma!, beta: beta!, y: y!}, attrs as any))
    return {x: g(0), gamma: g(1), beta: g(2)}
  },
})
tf.registerGradient({
  kernelName: FUSED.dropout,
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => ({x: () => run(FUSED.dropoutGrad, {dy: dy as tf.Tensor, y: saved[0]!}, attrs as any)}),
})
for (const [kernelName, masked] of [[FUSED.attention, false], [FUSED.attentionMasked, true]] as const) {
  tf.registerGradient({
    kernelName,
    inputsToSave: masked ? ['q', 'k', 'v', 'maskBias'] : ['q', 'k', 'v'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [q, k, v, ...rest] = saved as tf.Tensor[]
      const maskBias = masked ? rest[0] : undefined
      const y = rest[rest.length - 1]!
      const inputs: Record<string, tf.Tensor> = {dy: dy as tf.Tensor, q: q!, k: k!, v: v!, y}
      if (maskBias) inputs.maskBias = maskBias
      const g = eagerGrads(() => run(FUSED.attentionGrad, inputs, attrs as any))
      const grads: Record<string, () => tf.Tensor> = {q: g(0), k: g(1), v: g(2)}
      if (maskBias) grads.maskBias = g(3)
      return grads
    },
  })
}
