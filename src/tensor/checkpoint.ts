/**
 * Activation checkpointing (Chen et al., "Training Deep Nets with Sublinear Memory Cost", 2016):
 * y = f(xs) is computed without recording f's operations on the gradient tape, so none of f's
 * intermediate activations outlive the call; only xs (and the `constants` f reads) are kept. When
 * backprop reaches y with the gradient dy, f is run again with the tape on and dy is back-propagated
 * through the recomputation:
 *
 *   ∂L/∂x_i = (∂y/∂x_i)ᵀ · dy,  y recomputed as f(xs)
 *
 * For a stack of L layers this keeps L layer inputs plus one layer's activations instead of L layers'
 * activations, for one extra forward pass. The gradients equal the direct ones exactly when f is a
 * deterministic function of its arguments: randomness (dropout) must be seeded by values fixed before
 * the call, so the recomputation draws the same masks.
 *
 * Built on tf.customGrad, so it works under codiemb's variableGrads (src/tensor/backprop.ts) and
 * under tfjs's own tf.grads / tf.variableGrads; the recomputation uses gradientsOf, which frees each
 * recomputed activation as soon as backprop has passed it.
 */
import * as tf from '@tensorflow/tfjs-core'
import {gradientsOf} from './backprop.js'

/**
 * f(xs, constants) with its intermediates recomputed in the backward pass instead of kept.
 * `xs` are the tensors gradients flow to (a layer's input and its parameters, variables included);
 * `constants` are tensors f reads that need no gradient (an attention mask) and that must survive
 * until backward. f must return one tensor and must not depend on anything else that changes
 * between the forward and the backward pass.
 */
export function checkpoint(f: (xs: tf.Tensor[], constants: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], constants: tf.Tensor[] = []): tf.Tensor {
  if (xs.length === 0) throw new Error('checkpoint: no inputs to differentiate with respect to')
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc
    const inputs = args.slice(0, xs.length) as tf.Tensor[]
    // Kept for backward: clones sharing the inputs' data (no copy), freed when backprop passes y.
    save([...inputs, ...constants])
    return {
      value: f(inputs, constants),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const again = saved.slice(0, xs.length)
        const kept = saved.slice(xs.length)
        const {value, grads} = gradientsOf(() => f(again, kept), again, dy as tf.Tensor)
        value.dispose()
        // customGrad wants one gradient per input: zeros for an input the output does not depend on.
        return grads.map((g, i) => g ?? tf.zerosLike(again[i]!))
      },
    }
  })
  return op(...xs)
}
