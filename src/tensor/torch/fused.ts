import * as tf from '@tensorflow/tfjs-core'
import type {TorchHandle} from './addon.js'
import type {TorchBackend} from './backend.js'
import {registerTorchKernel} from './kernels/registry.js'
import {FUSED} from '../fused-names.js'

/**
 * The torch implementations of codiemb's fused kernels (names and gradients in src/tensor/ops.ts).
 * Forward kernels keep what their backward needs (softmax probabilities, layer-norm mean/rstd,
 * dropout masks) with their output when the gradient tape is recording, so backward recomputes
 * nothing; the kept tensors are freed with the output.
 */

type Inputs = Record<string, tf.TensorInfo>
type Attrs = Record<string, any>
const reg = registerTorchKernel

// Inside a kernel the engine's kernelDepth is 1, so isTapeOn() reads false; the gradient depth says
// whether a tf.grad / variableGrads is recording.
const tapeOn = (): boolean => (tf.engine() as any).state.gradientDepth > 0
const h = (b: TorchBackend, t: tf.TensorInfo): TorchHandle => b.handleOf(t)

// GELU: aten::gelu / aten::gelu_backward (approximate "none" = erf, "tanh").
reg(FUSED.gelu, (b, {x}, {approximate}) => b.output(b.op('aten::gelu')(h(b, x!), approximate ?? 'none'), 'float32'))
reg(FUSED.geluGrad, (b, {dy, x}, {approximate}) =>
  b.output(b.op('aten::gelu_backward')(h(b, dy!), h(b, x!), approximate ?? 'none'), 'float32'))

// Layer norm over the last axis: aten::native_layer_norm and its backward.
reg(FUSED.layerNorm, (b, {x, gamma, beta}, {epsilon}) => {
  const last = x!.shape[x!.shape.length - 1]!
  const [y, mean, rstd] = b.op('aten::native_layer_norm')(h(b, x!), [last], h(b, gamma!), h(b, beta!), epsilon) as TorchHandle[]
  const out = b.output(y!, 'float32')
  if (tapeOn()) b.stash(out, [mean!, rstd!])
  else {
    b.addon.release(mean!)
    b.addon.release(rstd!)
  }
  return out
})
reg(FUSED.layerNormGrad, (b, {dy, x, gamma, beta, y}, {epsilon}) => {
  const last = x!.shape[x!.shape.length - 1]!
  let stats = b.stashed(y!)
  if (!stats) {
    const [, mean, rstd] = b.op('aten::native_layer_norm')(h(b, x!), [last], h(b, gamma!), h(b, beta!), epsilon) as TorchHandle[]
    stats = [mean!, rstd!]
  }
  const [dx, dgamma, dbeta] = b.op('aten::native_layer_norm_backward')(
    h(b, dy!), h(b, x!), [last], stats[0], stats[1], h(b, gamma!), h(b, beta!), [true, true, true],
  ) as TorchHandle[]
  return [b.output(dx!, 'float32'), b.output(dgamma!, 'float32'), b.output(dbeta!, 'float32')]
})

// Dropout: aten::native_dropout keeps a boolean mask; backward scales dy by it.
reg(FUSED.dropout, (b, {x}, {rate, seed}) => {
  if (seed != null) b.addon.manualSeed(seed)
  const [y, mask] = b.op('aten::native_dropout')(h(b, x!), rate, true) as TorchHandle[]
  const out = b.output(y!, 'float32')
  if (tapeOn()) b.stash(out, [mask!])
  else b.addon.release(mask!)
  return out
})
reg(FUSED.dropoutGrad, (b, {dy, y}, {rate}) => {
  const kept = b.stashed(y!)
  if (!kept) throw new Error(`${FUSED.dropoutGrad}: the forward pass kept no dropout mask (was the tape off?)`)
  return b.output(b.op('aten::native_dropout_backward')(h(b, dy!), kept[0], 1 / (1 - rate)), 'float32')
})

// Scaled dot-product attention: softmax(q k^T * scale + maskBias) (with dropout on the
// probabilities) times v, for q [..., Tq, d], k/v [..., Tk, d], maskBias broadcastable to [..., Tq, Tk].
function attentionProbs(b: TorchBackend, q: tf.TensorInfo, k: tf.TensorInfo, maskBias: tf.TensorInfo | undefined, scale: number): TorchHandle {
  let scores = b.matmul(h(b, q), b.op('aten::transpose', 'int')(h(b, k), -1, -2))
  if (scale !== 1) scores = b.op('aten::mul_', 'Scalar')(scores, scale)
  if (maskBias) scores = b.op('aten::add_', 'Tensor')(scores, h(b, maskBias))
  const probs = b.op('aten::_softmax')(scores, -1, false)
  return probs
}
function attentionForward(b: TorchBackend, {q, k, v, maskBias}: Inputs, {scale, dropoutRate, seed}: Attrs): tf.TensorInfo {
  const probs = attentionProbs(b, q!, k!, maskBias, scale)
  let used = probs
  let mask: TorchHandle | undefined
  if (dropoutRate > 0) {
    if (seed != null) b.addon.manualSeed(seed)
    ;[used, mask] = b.op('aten::native_dropout')(probs, dropoutRate, true) as TorchHandle[]
  }
  const out = b.output(b.matmul(used, h(b, v!)), 'float32')
  if (tapeOn()) b.stash(out, mask ? [probs, mask] : [probs])
  else {
    b.addon.release(probs)
    if (mask) b.addon.release(mask)
  }
  return out
}
reg(FUSED.attention, attentionForward)
reg(FUSED.attentionMasked, attentionForward)
reg(FUSED.attentionGrad, (b, {dy, q, k, v, maskBias, y}, {scale, dropoutRate}) => {
  const kept = b.stashed(y!)
  if (!kept && dropoutRate > 0) throw new Error(`${FUSED.attentionGrad}: the forward pass kept no dropout mask (was the tape off?)`)
  const probs = kept ? kept[0]! : attentionProbs(b, q!, k!, maskBias, scale)
  const keep = kept?.[1]
  const keepScale = 1 / (1 - dropoutRate)
  const used = keep ? b.op('aten::native_dropout_backward')(probs, keep, keepScale) : probs
  const g = h(b, dy!)
  const dv = b.matmul(b.op('aten::transpose', 'int')(used, -1, -2), g)
  let dUsed = b.matmul(g, b.op('aten::transpose', 'int')(h(b, v!), -1, -2))
  if (keep) dUsed = b.op('aten::native_dropout_backward')(dUsed, keep, keepScale)
  let dScores = b.op('aten::_softmax_backward_data')(dUsed, probs, -1, 'float32')
  const dMask = dScores
  if (scale !== 1) dScores = b.op('aten::mul', 'Scalar')(dScores, scale)
  const dq = b.matmul(dScores, h(b, k!))
  const dk = b.matmul(b.op('aten::transpose', 'int')(dScores, -1, -2), h(b, q!))
  const outs = [b.output(dq, 'float32'), b.output(dk, 'float32'), b.output(dv, 'float32')]
  if (maskBias) {
    // The mask bias broadcasts over some axes; its gradient sums dScores over them.
    const full = b.addon.shape(dMask)
    const mb = maskBias.shape
    const lead = full.length - mb.length
    const axes: number[] = []
    for (let i = 0; i < full.length; i++) if (i < lead || mb[i - lead] === 1 && full[i] !== 1) axes.push(i)
    const summed = axes.length ? b.op('aten::sum', 'dim_IntList')(dMask, axes, true) : dMask
    outs.push(b.output(b.op('aten::reshape')(summed, mb), 'float32'))
  }
  return outs
})

