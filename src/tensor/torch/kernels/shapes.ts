/**
 * Shape kernels of the torch backend: reshapes, transposes, broadcasts, slices and strided slices,
 * joins, splits and padding. They move values without computing on them, so a bfloat16-stored
 * input stays bfloat16 (registry.ts hs).
 */
import * as tf from '@tensorflow/tfjs-core'
import type {TorchHandle} from '../addon.js'
import {axesOf, hs as h, registerTorchKernel as reg, sameStored} from './registry.js'

reg('Reshape', (b, {x}, {shape}) => {
  const size = tf.util.sizeFromShape(x!.shape)
  const $shape = tf.util.inferFromImplicitShape(shape, size)
  return b.output(b.op('aten::reshape')(h(b, x!), $shape), x!.dtype)
})
reg('ExpandDims', (b, {input}, {dim}) => {
  const rank = input!.shape.length
  const axis = dim < 0 ? rank + dim + 1 : dim
  return b.output(b.op('aten::unsqueeze')(h(b, input!), axis), input!.dtype)
})
reg('Squeeze', (b, {x}, {axis}) => {
  const {newShape} = tf.util.squeezeShape(x!.shape, axesOf(axis, x!.shape))
  return b.output(b.op('aten::reshape')(h(b, x!), newShape), x!.dtype)
})
reg('Transpose', (b, {x}, {perm}) => b.output(b.op('aten::permute')(h(b, x!), perm), x!.dtype))
reg('BroadcastTo', (b, {x}, {shape}) => {
  let t = h(b, x!)
  if (x!.shape.length < shape.length) t = b.op('aten::reshape')(t, [...new Array(shape.length - x!.shape.length).fill(1), ...x!.shape])
  return b.output(b.op('aten::expand')(t, shape), x!.dtype)
})
reg('Tile', (b, {x}, {reps}) => b.output(b.op('aten::repeat')(h(b, x!), reps), x!.dtype))
reg('Reverse', (b, {x}, {dims}) => {
  const axes = axesOf(dims, x!.shape)
  if (axes.length === 0) return b.output(b.op('aten::clone')(h(b, x!)), x!.dtype)
  return b.output(b.op('aten::flip')(h(b, x!), axes), x!.dtype)
})
reg('Slice', (b, {x}, {begin, size}) => {
  const [$begin, $size] = tf.slice_util.parseSliceParams(x!, begin, size)
  let t = h(b, x!)
  for (let d = 0; d < x!.shape.length; d++) {
    const start = $begin![d]!
    const len = $size![d]!
    if (start !== 0 || len !== x!.shape[d]) t = b.op('aten::slice', 'Tensor')(t, d, start, start + len, 1)
  }
  // A full slice: share the input's data (each data id must own its handle, or disposing one frees both).
  if (t === h(b, x!)) return b.alias(x!)
  return b.output(t, x!.dtype)
})
reg('StridedSlice', (b, {x}, {begin, end, strides, beginMask, endMask, ellipsisMask, newAxisMask, shrinkAxisMask}) => {
  const info = tf.slice_util.sliceInfo(x!.shape, begin, end, strides, beginMask, endMask, ellipsisMask, newAxisMask, shrinkAxisMask)
  let t = h(b, x!)
  if (!info.isIdentity) {
    for (let d = 0; d < x!.shape.length; d++) {
      const n = x!.shape[d]!
      let start = info.begin[d]!
      let stop = info.end[d]!
      let step = info.strides[d] ?? 1
      if (step < 0) {
        // ATen slices forward only: flip the axis and mirror the bounds.
        t = b.op('aten::flip')(t, [d])
        start = n - 1 - start
        stop = n - 1 - stop
        step = -step
      }
      if (start !== 0 || stop < n || step !== 1) t = b.op('aten::slice', 'Tensor')(t, d, start, Math.max(start, stop), step)
    }
  }
  return b.output(b.op('aten::reshape')(t, info.finalShape), x!.dtype)
})
reg('Concat', (b, inputs, {axis}) => {
  const list = (inputs as tf.TensorInfo[]).filter((t) => tf.util.sizeFromShape(t.shape) > 0)
  const all = inputs as tf.TensorInfo[]
  const ax = axesOf(axis, all[0]!.shape)[0]!
  if (list.length === 0) {
    const shape = tf.backend_util.computeOutShape(all.map((t) => t.shape), ax)
    return b.output(b.op('aten::reshape')(h(b, all[0]!), shape), all[0]!.dtype)
  }
  const dtype = list.map((t) => t.dtype).reduce((p, q) => tf.backend_util.upcastType(p, q))
  return b.output(b.op('aten::cat')(sameStored(b, list), ax), dtype)
})
reg('Pack', (b, inputs, {axis}) => {
  const list = inputs as tf.TensorInfo[]
  const ax = axis < 0 ? axis + list[0]!.shape.length + 1 : axis
  return b.output(b.op('aten::stack')(sameStored(b, list), ax), list[0]!.dtype)
})
reg('Unpack', (b, {value}, {axis}) => {
  const ax = axesOf(axis, value!.shape)[0]!
  const parts = b.op('aten::unbind', 'int')(h(b, value!), ax) as TorchHandle[]
  return parts.map((p) => b.output(p, value!.dtype))
})
reg('SplitV', (b, {x}, {numOrSizeSplits, axis}) => {
  const ax = axesOf(axis, x!.shape)[0]!
  const sizes = tf.backend_util.prepareSplitSize(x! as any, numOrSizeSplits, ax)
  const parts = b.op('aten::split_with_sizes')(h(b, x!), sizes, ax) as TorchHandle[]
  return parts.map((p) => b.output(p, x!.dtype))
})
reg('PadV2', (b, {x}, {paddings, constantValue}) => {
  // ATen lists pads from the last dimension backwards: [lastBefore, lastAfter, ...].
  const pad: number[] = []
  for (let d = paddings.length - 1; d >= 0; d--) pad.push(paddings[d][0], paddings[d][1])
  return b.output(b.op('aten::constant_pad_nd')(h(b, x!), pad, constantValue), x!.dtype)
})
reg('MirrorPad', (b, {x}, {paddings, mode}) => {
  let t = h(b, x!)
  // Pad one axis at a time by concatenating mirrored slices.
  paddings.forEach(([before, after]: [number, number], d: number) => {
    if (!before && !after) return
    const n = x!.shape[d]!
    const off = mode === 'reflect' ? 1 : 0
    const parts: TorchHandle[] = []
    if (before) parts.push(b.op('aten::flip')(b.op('aten::slice', 'Tensor')(t, d, off, off + before, 1), [d]))
    parts.push(t)
    if (after) parts.push(b.op('aten::flip')(b.op('aten::slice', 'Tensor')(t, d, n - off - after, n - off, 1), [d]))
    t = b.op('aten::cat')(parts, d)
  })
  return b.output(t, x!.dtype)
})
