/** Reduction kernels of the torch backend: sums, means, extrema, arg-extrema, softmax, cumulative sums and products, top-k. */
import * as tf from '@tensorflow/tfjs-core'
import type {TorchHandle} from '../addon.js'
import type {TorchBackend} from '../backend.js'
import {type KernelImpl, axesOf, h, registerTorchKernel as reg} from './registry.js'

/** Reduces over `axes`; an empty axis list is the identity (ATen would reduce everything). */
function reduce(b: TorchBackend, x: tf.TensorInfo, axes: number[], keepDims: boolean, dtype: tf.DataType, fn: (t: TorchHandle, axes: number[]) => TorchHandle): tf.TensorInfo {
  if (axes.length === 0) return b.output(b.op('aten::clone')(h(b, x)), dtype)
  return b.output(fn(h(b, x), axes), dtype)
}
reg('Sum', (b, {x}, {axis, keepDims}) =>
  reduce(b, x!, axesOf(axis, x!.shape), keepDims, x!.dtype === 'bool' ? 'int32' : x!.dtype, (t, axes) => b.op('aten::sum', 'dim_IntList')(t, axes, keepDims)))
reg('Mean', (b, {x}, {axis, keepDims}) =>
  reduce(b, x!, axesOf(axis, x!.shape), keepDims, 'float32', (t, axes) => {
    const f = x!.dtype === 'float32' ? t : b.op('aten::to', 'dtype')(t, 'float32')
    return b.op('aten::mean', 'dim')(f, axes, keepDims)
  }))
reg('Max', (b, {x}, {reductionIndices, keepDims}) =>
  reduce(b, x!, axesOf(reductionIndices, x!.shape), keepDims, x!.dtype, (t, axes) => b.op('aten::amax')(t, axes, keepDims)))
reg('Min', (b, {x}, {axis, keepDims}) =>
  reduce(b, x!, axesOf(axis, x!.shape), keepDims, x!.dtype, (t, axes) => b.op('aten::amin')(t, axes, keepDims)))
/** Reductions ATen offers one dimension at a time: apply from the last axis down. */
function reduceEach(op: string, overload: string, outDtype: (x: tf.TensorInfo) => tf.DataType): KernelImpl {
  return (b, {x}, {axis, keepDims}) =>
    reduce(b, x!, axesOf(axis, x!.shape), keepDims, outDtype(x!), (t, axes) => {
      let r = t
      for (const ax of [...axes].sort((p, q) => q - p)) r = b.op(op, overload)(r, ax, keepDims)
      return r
    })
}
reg('Prod', reduceEach('aten::prod', 'dim_int', (x) => (x.dtype === 'bool' ? 'int32' : x.dtype)))
reg('All', reduceEach('aten::all', 'dim', () => 'bool'))
reg('Any', reduceEach('aten::any', 'dim', () => 'bool'))
reg('ArgMax', (b, {x}, {axis}) => b.output(b.op('aten::argmax')(h(b, x!), axesOf(axis, x!.shape)[0], false), 'int32'))
reg('ArgMin', (b, {x}, {axis}) => b.output(b.op('aten::argmin')(h(b, x!), axesOf(axis, x!.shape)[0], false), 'int32'))
reg('Softmax', (b, {logits}, {dim}) => b.output(b.op('aten::softmax', 'int')(h(b, logits!), dim), 'float32'))
reg('LogSoftmax', (b, {logits}, {axis}) => b.output(b.op('aten::log_softmax', 'int')(h(b, logits!), axis), 'float32'))
reg('Cumsum', (b, {x}, {axis, exclusive, reverse}) => {
  let t = h(b, x!)
  const ax = axesOf(axis, x!.shape)[0]!
  if (reverse) t = b.op('aten::flip')(t, [ax])
  let s = b.op('aten::cumsum')(t, ax)
  if (exclusive) s = b.op('aten::sub', 'Tensor')(s, t)
  if (reverse) s = b.op('aten::flip')(s, [ax])
  return b.output(s, x!.dtype)
})
reg('Cumprod', (b, {x}, {axis, exclusive, reverse}) => {
  let t = h(b, x!)
  const ax = axesOf(axis, x!.shape)[0]!
  if (reverse) t = b.op('aten::flip')(t, [ax])
  if (exclusive) {
    // Shift right by one along ax, filling with 1.
    const pad = new Array(2 * (x!.shape.length - ax)).fill(0)
    pad[pad.length - 2] = 1
    const padded = b.op('aten::constant_pad_nd')(t, pad, 1)
    t = b.op('aten::slice', 'Tensor')(padded, ax, 0, x!.shape[ax], 1)
  }
  let s = b.op('aten::cumprod')(t, ax)
  if (reverse) s = b.op('aten::flip')(s, [ax])
  return b.output(s, x!.dtype)
})
reg('TopK', (b, {x}, {k, sorted}) => {
  const [values, indices] = b.op('aten::topk')(h(b, x!), k, -1, true, sorted ?? true) as [TorchHandle, TorchHandle]
  return [b.output(values, x!.dtype), b.output(indices, 'int32')]
})
