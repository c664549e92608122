/**
 * Gradient registration.
 *
 * @tensorflow/tfjs-core's Node bundle registers kernels' forward passes only; the gradient
 * functions (tf.grad, tf.variableGrads) are registered by the @tensorflow/tfjs union package into
 * tfjs's process-global gradient registry, which every backend (cpu, tensorflow, torch) shares.
 * Anything that differentiates calls `ensureGradients()` first.
 *
 * It also replaces the gradient of `gather` along axis 0 (embedding lookups). The stock gradient
 * goes through unsortedSegmentSum, which the pure-JS backend computes as one masked sum per
 * segment: O(vocabulary × tokens × hidden), minutes per step for a 21k-token vocabulary. A
 * scatter-add (scatterND sums duplicate indices) gives the same dense gradient in
 * O(tokens × hidden + vocabulary × hidden). Other axes and batched gathers keep the stock gradient.
 */
import * as tf from '@tensorflow/tfjs-core'

let loading: Promise<void> | undefined

export function ensureGradients(): Promise<void> {
  loading ??= import('@tensorflow/tfjs').then(() => registerEmbeddingGradient())
  return loading
}

function registerEmbeddingGradient(): void {
  const stock = tf.getGradient(tf.GatherV2)
  if (!stock) throw new Error('the gather gradient is not registered (did @tensorflow/tfjs load?)')
  tf.registerGradient({
    kernelName: tf.GatherV2,
    inputsToSave: ['x', 'indices'],
    gradFunc: (dy, saved, attrs) => {
      const [x, indices] = saved
      const {axis, batchDims} = attrs as unknown as {axis: number; batchDims: number}
      const dyTensor = Array.isArray(dy) ? dy[0] : dy
      if ((axis !== 0 && axis !== -x.rank) || batchDims !== 0) return stock.gradFunc(dy, saved, attrs)
      return {
        x: () => {
          const count = indices.size
          const rowShape = x.shape.slice(1)
          const flatIndices = tf.reshape(tf.cast(indices, 'int32'), [count, 1])
          const updates = tf.reshape(dyTensor, [count, ...rowShape])
          return tf.scatterND(flatIndices, updates, x.shape)
        },
        indices: () => tf.zerosLike(indices),
      }
    },
  })
}
