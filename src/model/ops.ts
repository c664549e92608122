/**
 * Transformer building blocks in tfjs-core ops (so they run on every tensor backend).
 * All functions are pure tensor -> tensor and must be called inside tf.tidy / tf.variableGrads.
 */
import * as tf from '@tensorflow/tfjs-core'
import '../tensor/gradients.js'
import * as fused from '../tensor/ops.js'

const INV_SQRT2 = Math.SQRT1_2
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI)
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI)

/**
 * GELU with the exact Gaussian CDF: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) — transformers' "gelu".
 * The gradient Phi(x) + x phi(x) is given analytically, so backprop keeps only x (not the erf
 * intermediates). tfjs's erf kernels use Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), i.e. float32
 * precision.
 */
export const geluErf: (x: tf.Tensor) => tf.Tensor = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const input = args[0] as tf.Tensor
  const save = args[1] as tf.GradSaveFunc
  save([input])
  const cdf = tf.mul(0.5, tf.add(1, tf.erf(tf.mul(input, INV_SQRT2))))
  return {
    value: tf.mul(input, cdf),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs] = saved as [tf.Tensor]
      const phi = tf.mul(0.5, tf.add(1, tf.erf(tf.mul(xs, INV_SQRT2))))
      const pdf = tf.mul(INV_SQRT_2PI, tf.exp(tf.mul(-0.5, tf.square(xs))))
      return [tf.mul(dy, tf.add(phi, tf.mul(xs, pdf)))]
    },
  }
}) as (x: tf.Tensor) => tf.Tensor

/** GELU, tanh approximation (transformers "gelu_new", "gelu_pytorch_tanh", "gelu_fast"). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(SQRT_2_OVER_PI, tf.add(x, tf.mul(0.044715, tf.pow(x, 3))))
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)))
}

/**
 * Whether the active backend runs codiemb's fused kernels (src/tensor/ops.ts: one ATen call per
 * GELU, layer norm, attention or dropout, with analytic backward). When it does, the functions below
 * call them: fewer kernel launches and far fewer activations kept for backprop (the composite GELU
 * alone keeps five [rows, intermediate] tensors per layer).
 */
export function fusedPaths(): boolean {
  return fused.fusedKernelsActive()
}

const geluExact = (x: tf.Tensor): tf.Tensor => (fusedPaths() ? fused.gelu(x, 'none') : geluErf(x))
const geluApproximate = (x: tf.Tensor): tf.Tensor => (fusedPaths() ? fused.gelu(x, 'tanh') : geluTanh(x))

/** The `hidden_act` values of BERT/XLM-R family configs. */
export const ACTIVATIONS: Readonly<Record<string, (x: tf.Tensor) => tf.Tensor>> = {
  gelu: geluExact,
  gelu_python: geluExact,
  gelu_new: geluApproximate,
  gelu_pytorch_tanh: geluApproximate,
  gelu_fast: geluTanh,
  quick_gelu: (x) => tf.mul(x, tf.sigmoid(tf.mul(1.702, x))),
  relu: (x) => tf.relu(x),
  silu: (x) => tf.mul(x, tf.sigmoid(x)),
  swish: (x) => tf.mul(x, tf.sigmoid(x)),
  tanh: (x) => tf.tanh(x),
  linear: (x) => x,
}

/** y = x W^T + b with a PyTorch-layout weight [out, in]; x is [rows, in]. */
export function linear(x: tf.Tensor2D, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor2D {
  return tf.fused.matMul({a: x, b: weight as tf.Tensor2D, transposeB: true, bias}) as tf.Tensor2D
}

/**
 * Whether to use the cpu-backend formulations below. tfjs's pure-JS cpu kernels are 5-15x slower on
 * broadcasting element-wise ops (per-element index arithmetic) than on same-shape ones, while small
 * matmuls are cheap; on native backends broadcasting is free and the plain formulation is better.
 */
export function cpuFastPaths(): boolean {
  return tf.getBackend() === 'cpu'
}

/**
 * LayerNorm over the last axis of x [rows, H] with the config's epsilon (biased variance, two-pass,
 * as PyTorch): (x - mean) / sqrt(var + eps) * gamma + beta.
 * On cpu the per-row statistics are formed with matmuls: mean = x (1/H), its broadcast = mean 1^T,
 * and 1/sqrt(var + eps) times gamma as the outer product inv gamma^T — same values, no slow broadcasts.
 */
export function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor2D {
  if (fusedPaths()) return fused.layerNorm(x, gamma, beta, eps) as tf.Tensor2D
  if (!cpuFastPaths()) {
    const {mean, variance} = tf.moments(x, -1, true)
    return tf.add(tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gamma), beta) as tf.Tensor2D
  }
  const H = x.shape[1]
  const average = tf.fill([H, 1], 1 / H) as tf.Tensor2D
  const mean = tf.matMul(x, average)
  const centered = tf.sub(x, tf.matMul(mean, tf.ones([1, H]) as tf.Tensor2D))
  const variance = tf.matMul(tf.square(centered), average)
  const scale = tf.matMul(tf.rsqrt(tf.add(variance, eps)), tf.reshape(gamma, [1, H]) as tf.Tensor2D)
  return tf.add(tf.mul(centered, scale), beta) as tf.Tensor2D
}

/**
 * Softmax over the last axis. On cpu the row max, row sum and their broadcasts are matmuls against
 * ones vectors (tfjs-cpu's Softmax kernel broadcasts element by element); elsewhere tf.softmax.
 */
export function softmaxLastAxis(x: tf.Tensor): tf.Tensor {
  if (!cpuFastPaths()) return tf.softmax(x)
  const shape = x.shape
  const T = shape[shape.length - 1]!
  const rows = tf.reshape(x, [-1, T]) as tf.Tensor2D
  const onesRow = tf.ones([1, T]) as tf.Tensor2D
  const shifted = tf.exp(tf.sub(rows, tf.matMul(tf.max(rows, 1, true) as tf.Tensor2D, onesRow)))
  const total = tf.matMul(shifted, tf.ones([T, 1]) as tf.Tensor2D)
  return tf.reshape(tf.mul(shifted, tf.matMul(tf.reciprocal(total), onesRow)), shape)
}

/** Inverted dropout, only when training with a positive rate. */
export function dropout(x: tf.Tensor, rate: number, training: boolean, seed?: number): tf.Tensor {
  if (!training || !(rate > 0)) return x
  if (fusedPaths()) return fused.dropout(x, rate, seed)
  return tf.dropout(x, rate, undefined, seed)
}

/**
 * Multi-head self-attention core: softmax(q k^T * scale + maskBias) v, with dropout on the
 * probabilities when training; q, k, v are [B, heads, T, dHead], maskBias [B, 1, 1, T] (fused
 * backends) or already broadcast to [B, heads, T, T] (cpu, see cpuFastPaths). One fused kernel where
 * the backend has it (ATen matmul + softmax, probabilities kept for backward), else tfjs ops.
 */
export function selfAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, maskBias: tf.Tensor, scale: number, dropoutRate: number, training: boolean, seed: number): tf.Tensor4D {
  if (fusedPaths()) return fused.attention(q, k, v, {maskBias, scale, dropoutRate: training ? dropoutRate : 0, seed}) as tf.Tensor4D
  const scores = tf.add(tf.matMul(tf.mul(q, scale), k, false, true), maskBias)
  const probs = dropout(softmaxLastAxis(scores), dropoutRate, training, seed)
  return tf.matMul(probs, v) as tf.Tensor4D
}
