/** Gather and scatter kernels of the torch backend (ATen wants int64 indices): gathers, segment sums, nd gathers and scatters, one-hot. */
import * as tf from '@tensorflow/tfjs-core'
import type {TorchHandle} from '../addon.js'
import type {TorchBackend} from '../backend.js'
import {axesOf, h, registerTorchKernel as reg} from './registry.js'

const long = (b: TorchBackend, t: tf.TensorInfo): TorchHandle => b.op('aten::to', 'dtype')(h(b, t), 'int64')

reg('GatherV2', (b, {x, indices}, {axis, batchDims}) => {
  const ax = axesOf(axis, x!.shape)[0]!
  const info = tf.backend_util.segment_util.collectGatherOpShapeInfo(x! as any, indices! as any, ax, batchDims)
  const idx = long(b, indices!)
  let out: TorchHandle
  if (info.batchSize === 1) {
    const xr = b.op('aten::reshape')(h(b, x!), [info.outerSize, info.dimSize, info.sliceSize])
    out = b.op('aten::index_select')(xr, 1, b.op('aten::reshape')(idx, [-1]))
  } else {
    const xr = b.op('aten::reshape')(h(b, x!), [info.batchSize, info.outerSize, info.dimSize, info.sliceSize])
    const n = tf.util.sizeFromShape(indices!.shape) / info.batchSize
    const ir = b.op('aten::reshape')(idx, [info.batchSize, 1, n, 1])
    const ie = b.op('aten::expand')(ir, [info.batchSize, info.outerSize, n, info.sliceSize])
    out = b.op('aten::gather')(xr, 2, ie)
  }
  return b.output(b.op('aten::reshape')(out, info.outputShape), x!.dtype)
})
reg('UnsortedSegmentSum', (b, {x, segmentIds}, {numSegments}) => {
  const idRank = segmentIds!.shape.length
  const rest = x!.shape.slice(idRank)
  const n = tf.util.sizeFromShape(segmentIds!.shape)
  const xr = b.op('aten::reshape')(h(b, x!), [n, ...rest])
  const ids = b.op('aten::reshape')(long(b, segmentIds!), [n])
  const zeros = b.op('aten::zeros')([numSegments, ...rest], x!.dtype, null, b.device)
  return b.output(b.op('aten::index_add')(zeros, 0, ids, xr), x!.dtype)
})
/** Row-major strides of the first `k` dims of `shape`, as an int64 handle for linearising nd indices. */
function linearIndex(b: TorchBackend, indices: tf.TensorInfo, shape: number[]): {linear: TorchHandle; k: number} {
  const k = indices.shape[indices.shape.length - 1]!
  const strides = new BigInt64Array(k)
  let s = 1
  for (let i = k - 1; i >= 0; i--) {
    strides[i] = BigInt(s)
    s *= shape[i]!
  }
  const st = b.fromValues(strides, [k], 'int64')
  const linear = b.op('aten::sum', 'dim_IntList')(b.op('aten::mul', 'Tensor')(long(b, indices), st), [-1], false)
  return {linear: b.op('aten::reshape')(linear, [-1]), k}
}
reg('GatherNd', (b, {params, indices}) => {
  const {linear, k} = linearIndex(b, indices!, params!.shape)
  const rest = params!.shape.slice(k)
  const flat = b.op('aten::reshape')(h(b, params!), [tf.util.sizeFromShape(params!.shape.slice(0, k)), ...rest])
  const out = b.op('aten::index_select')(flat, 0, linear)
  return b.output(b.op('aten::reshape')(out, [...indices!.shape.slice(0, -1), ...rest]), params!.dtype)
})
reg('ScatterNd', (b, {indices, updates}, {shape}) => {
  const {linear, k} = linearIndex(b, indices!, shape)
  const rest = shape.slice(k)
  const rows = tf.util.sizeFromShape(shape.slice(0, k))
  const upd = b.op('aten::reshape')(h(b, updates!), [-1, ...rest])
  const zeros = b.op('aten::zeros')([rows, ...rest], updates!.dtype, null, b.device)
  return b.output(b.op('aten::reshape')(b.op('aten::index_add')(zeros, 0, linear, upd), shape), updates!.dtype)
})
reg('OneHot', (b, {indices}, {depth, onValue, offValue, dtype}) => {
  const idx = b.op('aten::unsqueeze')(long(b, indices!), -1)
  const range = b.op('aten::arange')(depth, 'int64', null, b.device)
  const hot = b.op('aten::eq', 'Tensor')(idx, range)
  const on = b.op('aten::full_like')(hot, onValue, dtype)
  return b.output(b.op('aten::where', 'ScalarOther')(hot, on, offValue), dtype)
})
