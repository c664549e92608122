/**
 * The tensor ops of the encoders and the optimizer, backend-agnostic: on a backend that registers
 * codiemb's fused kernels (the `torch` backend: ATen's gelu and native_layer_norm, the addon's
 * dropout (native_dropout off the CPU), memory-efficient attention) each op is one kernel with an
 * analytic gradient; on every other backend (cpu, tensorflow) it is a composite of tfjs ops, written
 * for speed on the cpu backend where that matters
 * (see cpuFastPaths). Both paths compute the same function; tests check values and gradients agree.
 *
 * Gradients of the fused kernels are registered here, at import, in tfjs's process-global gradient
 * registry (and the composites' through ./gradients.js). Call the ops inside tf.tidy /
 * tf.variableGrads like any tfjs op.
 */
import * as tf from '@tensorflow/tfjs-core'
import {FUSED} from './fused-names.js'
import {recordingGradients} from './backprop.js'
import {activationsInBf16, tensorStorage} from './storage.js'
import {cpuFastPaths, eagerGrads, hasKernel, run} from './kernel-calls.js'
import './gradients.js'

export {FUSED} from './fused-names.js'
export {cpuFastPaths, fusedKernelsActive} from './kernel-calls.js'
export {ATTENTION_BLOCK_ELEMENTS, attention, packedAttention, type AttentionOptions, type PackedAttentionOptions} from './attention-op.js'

// ---------------------------------------------------------------------------------------------
// Dense layers and activations

/**
 * y = x W^T + b with a PyTorch-layout weight [out, in]; x is [rows, in]. Gradients: dx = dy W,
 * dW = dyᵀ x, db = Σ_rows dy. For them it keeps x and W alone, as torch.nn.Linear does:
 * tf.fused.matMul's own gradient also keeps its output y, an activation-sized tensor that only
 * activation functions need. Where nothing else keeps y (the attention output projection and the
 * second feed-forward layer, each followed by dropout) that was two hidden-sized tensors per token
 * and layer beyond PyTorch's: about a fifth of a BERT step's activation memory.
 */
export function linear(x: tf.Tensor2D, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor2D {
  const w = weight as tf.Tensor2D
  // On the torch backend one kernel per product (FUSED.linear): tf.fused.matMul and tf.matMul wrap
  // each product in three Reshape kernels.
  const fused = hasKernel(FUSED.linear)
  const product = (a: tf.Tensor, b: tf.Tensor, c?: tf.Tensor): tf.Tensor2D =>
    fused ? run(FUSED.linear, c ? {x: a, weight: b, bias: c} : {x: a, weight: b}) : (tf.fused.matMul({a: a as tf.Tensor2D, b: b as tf.Tensor2D, transposeB: true, bias: c}) as tf.Tensor2D)
  // No gradient is being recorded (encoding, evaluation): nothing to keep, no custom-gradient node.
  if (!recordingGradients()) return product(x, w, bias)
  // bf16 activations (torch, --precision bf16): keep x's bfloat16 copy, the product's operand, and
  // give each gradient its input's storage dtype, as autocast's cast before a linear layer does.
  const bf16 = activationsInBf16()
  const xDtype = bf16 ? tensorStorage(x).dtype : 'float32'
  // Gradients of x and W (and of a bias, withBias): on torch dx in one kernel, dW and db in another.
  const backward = (dy: tf.Tensor, saved: tf.Tensor[], withBias: boolean): tf.Tensor[] => {
    const [xs, ws] = saved as [tf.Tensor2D, tf.Tensor2D]
    if (fused && (!withBias || bias!.rank === 1)) {
      const dx = run(FUSED.linearInputGrad, {dy, weight: ws}, {storage: xDtype === 'bfloat16' ? 'bfloat16' : 'float32'})
      const dwb = run(FUSED.linearWeightGrad, {dy, x: xs}, {bias: withBias})
      return [dx, ...(withBias ? (dwb as tf.Tensor[]) : [dwb as tf.Tensor])]
    }
    const db = withBias ? [tf.reshape(tf.sum(dy, 0), bias!.shape)] : []
    const dx = tf.matMul(dy as tf.Tensor2D, ws)
    const dw = tf.matMul(dy as tf.Tensor2D, xs, true, false)
    if (!bf16) return [dx, dw, ...db]
    return [storageCast(dx, xDtype === 'bfloat16' ? 'bfloat16' : 'float32'), storageCast(dw, 'float32'), ...db]
  }
  const keep = (a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc): tf.Tensor => {
    const input = bf16 ? storageCast(a, 'bfloat16') : a
    save([input, b])
    return input
  }
  if (!bias) return withGradient(([a, b], save) => ({value: product(keep(a!, b!, save), b!), gradFunc: (dy, saved) => backward(dy, saved, false)}))(x, w) as tf.Tensor2D
  return withGradient(([a, b, c], save) => ({value: product(keep(a!, b!, save), b!, c!), gradFunc: (dy, saved) => backward(dy, saved, true)}))(x, w, bias) as tf.Tensor2D
}

/**
 * a + b for a residual connection (same shapes): its gradient passes dy to both and keeps nothing.
 * tf.add's gradient keeps both inputs (for their shapes, in case they broadcast): on the residual
 * path that is the branch's dropout output and the block's input, activation-sized tensors that
 * nothing else needs (PyTorch's add keeps none).
 */
export function residualAdd(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (!recordingGradients()) return tf.add(a, b)
  if (!tf.util.arraysEqual(a.shape, b.shape)) throw new Error(`residualAdd: shapes [${a.shape}] and [${b.shape}] differ`)
  // Two tensors, not dy twice: backprop frees each input's gradient on its own.
  return withGradient(([x, y]) => ({value: tf.add(x!, y!), gradFunc: (dy) => [tf.clone(dy), tf.clone(dy)]}))(a, b)
}

/**
 * `x` stored in `to` (a float32 tfjs tensor either way): bfloat16 only on a backend keeping bf16
 * activations (torch, --precision bf16); else, and when x is already stored so, x itself.
 */
function storageCast(x: tf.Tensor, to: 'bfloat16' | 'float32'): tf.Tensor {
  return run(FUSED.storageCast, {x}, {to})
}

/** tf.customGrad with its inputs as an array and the save function apart (tfjs types them as one rest list). */
function withGradient(
  f: (inputs: tf.Tensor[], save: tf.GradSaveFunc) => {value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[]},
): (...inputs: tf.Tensor[]) => tf.Tensor {
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => f(args.slice(0, -1) as tf.Tensor[], args[args.length - 1] as tf.GradSaveFunc))
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI)
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI)

/**
 * GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) ("none", transformers' `gelu`), or the tanh
 * approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) ("tanh", `gelu_new`).
 */
export function gelu(x: tf.Tensor, approximate: 'none' | 'tanh' = 'none'): tf.Tensor {
  if (hasKernel(FUSED.gelu)) return run(FUSED.gelu, {x}, {approximate})
  if (approximate === 'tanh') {
    return tf.tidy(() => {
      const inner = tf.mul(SQRT_2_OVER_PI, tf.add(x, tf.mul(0.044715, tf.pow(x, 3))))
      return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)))
    })
  }
  return geluErf(x)
}

/**
 * The composite exact GELU with its gradient Phi(x) + x phi(x) given analytically, so backprop keeps
 * only x (not the erf intermediates). tfjs's erf kernels use Abramowitz & Stegun 7.1.26
 * (|error| <= 1.5e-7), i.e. float32 precision.
 */
const geluErf: (x: tf.Tensor) => tf.Tensor = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const input = args[0] as tf.Tensor
  const save = args[1] as tf.GradSaveFunc
  save([input])
  const cdf = tf.mul(0.5, tf.add(1, tf.erf(tf.mul(input, Math.SQRT1_2))))
  return {
    value: tf.mul(input, cdf),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs] = saved as [tf.Tensor]
      const phi = tf.mul(0.5, tf.add(1, tf.erf(tf.mul(xs, Math.SQRT1_2))))
      const pdf = tf.mul(INV_SQRT_2PI, tf.exp(tf.mul(-0.5, tf.square(xs))))
      return [tf.mul(dy, tf.add(phi, tf.mul(xs, pdf)))]
    },
  }
}) as (x: tf.Tensor) => tf.Tensor

const geluExact = (x: tf.Tensor): tf.Tensor => gelu(x, 'none')
const geluApproximate = (x: tf.Tensor): tf.Tensor => gelu(x, 'tanh')

/**
 * The `hidden_act` values of BERT/XLM-R family configs. transformers' gelu_new, gelu_pytorch_tanh
 * and gelu_fast are one function (the tanh approximation), written three ways.
 */
export const ACTIVATIONS: Readonly<Record<string, (x: tf.Tensor) => tf.Tensor>> = {
  gelu: geluExact,
  gelu_python: geluExact,
  gelu_new: geluApproximate,
  gelu_pytorch_tanh: geluApproximate,
  gelu_fast: geluApproximate,
  quick_gelu: (x) => tf.mul(x, tf.sigmoid(tf.mul(1.702, x))),
  relu: (x) => tf.relu(x),
  silu: (x) => tf.mul(x, tf.sigmoid(x)),
  swish: (x) => tf.mul(x, tf.sigmoid(x)),
  tanh: (x) => tf.tanh(x),
  linear: (x) => x,
}

// ---------------------------------------------------------------------------------------------
// Layer norm

/**
 * LayerNorm over the last axis: (x - mean) / sqrt(var + epsilon) * gamma + beta, with the biased
 * variance, two-pass (as PyTorch). gamma and beta have the size H of the last axis.
 * On cpu the per-row statistics are matmuls over x as [rows, H]: mean = x (1/H), its broadcast
 * mean 1^T, and 1/sqrt(var + epsilon) times gamma as the outer product inv gamma^T — same values, no
 * slow broadcasts.
 */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: number): tf.Tensor {
  if (hasKernel(FUSED.layerNorm)) return run(FUSED.layerNorm, {x, gamma, beta}, {epsilon})
  return tf.tidy(() => {
    if (!cpuFastPaths()) {
      const {mean, variance} = tf.moments(x, -1, true)
      return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon))), gamma), beta)
    }
    const H = x.shape[x.shape.length - 1]!
    const rows = (x.rank === 2 ? x : tf.reshape(x, [-1, H])) as tf.Tensor2D
    const average = tf.fill([H, 1], 1 / H) as tf.Tensor2D
    const mean = tf.matMul(rows, average)
    const centered = tf.sub(rows, tf.matMul(mean, tf.ones([1, H]) as tf.Tensor2D))
    const variance = tf.matMul(tf.square(centered), average)
    const scale = tf.matMul(tf.rsqrt(tf.add(variance, epsilon)), tf.reshape(gamma, [1, H]) as tf.Tensor2D)
    const y = tf.add(tf.mul(centered, scale), beta)
    return x.rank === 2 ? y : tf.reshape(y, x.shape)
  })
}

// ---------------------------------------------------------------------------------------------
// Dropout

/**
 * Inverted dropout: zeroes each element with probability `rate` and scales the rest by 1/(1-rate).
 * Identity when rate is 0. The torch path draws its mask natively — on the CPU with the addon's
 * counter-based generator (one seed, one mask; without a seed, one drawn from libtorch's generator),
 * elsewhere with libtorch's generator seeded by `seed` — the composite path with tfjs's; they do not
 * draw the same mask.
 */
export function dropout(x: tf.Tensor, rate: number, seed?: number): tf.Tensor {
  if (!(rate > 0)) return x
  if (rate >= 1) throw new Error(`dropout rate must be in [0, 1), got ${rate}`)
  if (hasKernel(FUSED.dropout)) {
    // The fused kernel returns the output and its boolean mask; the gradient keeps the mask alone
    // (a byte per element), not the output: nothing downstream keeps a dropout's output (a residual
    // add follows), so keeping it to find the mask cost a hidden-sized tensor per dropout.
    return withGradient(([input], save) => {
      const [y, mask] = run(FUSED.dropout, {x: input!}, {rate, seed}) as [tf.Tensor, tf.Tensor]
      save([mask])
      return {value: y, gradFunc: (dy, saved) => run(FUSED.dropoutGrad, {dy, mask: saved[0]!}, {rate})}
    })(x)
  }
  return tf.dropout(x, rate, undefined, seed)
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
  /** New params, m and v; null where the backend updated the tensor in place (it owned its data). */
  adamw(params: tf.Tensor[], grads: tf.Tensor[], m: tf.Tensor[], v: tf.Tensor[], hp: Omit<AdamWHyper, 'weightDecay'> & {weightDecay: number}): [(tf.Tensor | null)[], (tf.Tensor | null)[], (tf.Tensor | null)[]]
}

/**
 * One AdamW step over all parameters at once, assigning params, m and v in place:
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p = p - lr * wd * p - lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * (decoupled weight decay on the pre-update p, as PyTorch's AdamW). `grads[i]` may be undefined to
 * skip a parameter. The torch backend does the whole update in one native loop, in place for every
 * variable that alone holds its data (no other tensor shares it), as PyTorch's AdamW does.
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
        for (const [target, fresh] of [[params[i]!, np[j]], [m[i]!, nm[j]], [v[i]!, nv[j]]] as const) {
          if (!fresh) continue // updated in place
          target.assign(fresh)
          fresh.dispose()
        }
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

tf.registerGradient({
  kernelName: FUSED.gelu,
  inputsToSave: ['x'],
  gradFunc: (dy, saved, attrs) => ({x: () => run(FUSED.geluGrad, {dy: dy as tf.Tensor, x: saved[0]!}, attrs as any)}),
})
tf.registerGradient({
  kernelName: FUSED.layerNorm,
  inputsToSave: ['x', 'gamma', 'beta'],
  gradFunc: (dy, saved, attrs) => {
    const [x, gamma, beta] = saved as tf.Tensor[]
    const g = eagerGrads(() => run(FUSED.layerNormGrad, {dy: dy as tf.Tensor, x: x!, gamma: gamma!, beta: beta!}, attrs as any))
    return {x: g(0), gamma: g(1), beta: g(2)}
  },
})
// FUSED.dropout has no registered gradient: dropout() records it through tf.customGrad, keeping the mask.
// A storage cast changes no value: its gradient is dy.
tf.registerGradient({kernelName: FUSED.storageCast, gradFunc: (dy) => ({x: () => dy as tf.Tensor})})
