import * as tf from '@tensorflow/tfjs-core'
import type {TorchHandle} from './addon.js'
import type {TorchBackend} from './backend.js'

/**
 * The tfjs kernels of the `torch` backend, each implemented with ATen operators through the addon's
 * boxed-dispatcher calls. tfjs's own gradients (registered by kernel name, backend-independent) run
 * on these kernels too, so the list covers what the encoders, losses and optimizers use plus what
 * their gradients call. A kernel that is not here fails in tfjs with
 * "Kernel 'Name' not registered for backend 'torch'".
 */

type Inputs = Record<string, tf.TensorInfo> & tf.TensorInfo[]
type Attrs = Record<string, any>
type KernelImpl = (b: TorchBackend, inputs: Inputs, attrs: Attrs) => tf.TensorInfo | tf.TensorInfo[]

export const TORCH_BACKEND_NAME = 'torch'
const registered: string[] = []

/**
 * Registers a kernel for the torch backend: ATen results made inside it are temporaries, released as
 * it returns unless they became outputs or stashed state. fused.ts registers its kernels through it too.
 */
export function registerTorchKernel(kernelName: string, impl: KernelImpl): void {
  registered.push(kernelName)
  tf.registerKernel({
    kernelName,
    backendName: TORCH_BACKEND_NAME,
    kernelFunc: ({inputs, attrs, backend}) => {
      const b = backend as TorchBackend
      const mark = b.tempMark()
      try {
        return impl(b, inputs as Inputs, attrs as Attrs) as any
      } finally {
        b.releaseTemps(mark)
      }
    },
  })
}

const reg = registerTorchKernel

/** The kernel names this backend implements. */
export function torchKernelNames(): string[] {
  return [...registered]
}

const h = (b: TorchBackend, t: tf.TensorInfo): TorchHandle => b.handleOf(t)
const axesOf = (axis: number | number[] | undefined, shape: number[]): number[] => tf.util.parseAxisParam(axis ?? null as any, shape)

// ---------------------------------------------------------------------------------------------
// Element-wise

/** Unary kernels whose result has the input's dtype. */
const SAME_DTYPE_UNARY: Record<string, string> = {
  Abs: 'aten::abs', Neg: 'aten::neg', Square: 'aten::square', Sign: 'aten::sign', Floor: 'aten::floor', Ceil: 'aten::ceil',
  Round: 'aten::round', Relu: 'aten::relu', ZerosLike: 'aten::zeros_like', OnesLike: 'aten::ones_like',
}
/** Unary kernels that tfjs defines on floats (int inputs give float32). */
const FLOAT_UNARY: Record<string, string> = {
  Exp: 'aten::exp', Log: 'aten::log', Log1p: 'aten::log1p', Expm1: 'aten::expm1', Sqrt: 'aten::sqrt', Rsqrt: 'aten::rsqrt',
  Erf: 'aten::erf', Tanh: 'aten::tanh', Sigmoid: 'aten::sigmoid', Sin: 'aten::sin', Cos: 'aten::cos', Tan: 'aten::tan',
  Asin: 'aten::asin', Acos: 'aten::acos', Atan: 'aten::atan', Sinh: 'aten::sinh', Cosh: 'aten::cosh', Asinh: 'aten::asinh',
  Acosh: 'aten::acosh', Atanh: 'aten::atanh', Reciprocal: 'aten::reciprocal', Softplus: 'aten::softplus', Elu: 'aten::elu',
  Selu: 'aten::selu',
}
const BOOL_UNARY: Record<string, string> = {IsNan: 'aten::isnan', IsInf: 'aten::isinf', IsFinite: 'aten::isfinite', LogicalNot: 'aten::logical_not'}

for (const [name, op] of Object.entries(SAME_DTYPE_UNARY)) {
  reg(name, (b, {x}) => b.output(b.op(op)(h(b, x!)), x!.dtype))
}
for (const [name, op] of Object.entries(FLOAT_UNARY)) {
  reg(name, (b, {x}) => {
    const xt = x!.dtype === 'float32' ? h(b, x!) : b.op('aten::to', 'dtype')(h(b, x!), 'float32')
    return b.output(b.op(op)(xt), 'float32')
  })
}
for (const [name, op] of Object.entries(BOOL_UNARY)) {
  reg(name, (b, {x}) => b.output(b.op(op)(h(b, x!)), 'bool'))
}
reg('Relu6', (b, {x}) => b.output(b.op('aten::clamp')(h(b, x!), 0, 6), x!.dtype))
reg('LeakyRelu', (b, {x}, {alpha}) => b.output(b.op('aten::leaky_relu')(h(b, x!), alpha), 'float32'))
reg('Prelu', (b, {x, alpha}) => {
  const xt = h(b, x!)
  const positive = b.op('aten::gt', 'Scalar')(xt, 0)
  return b.output(b.op('aten::where', 'self')(positive, xt, b.op('aten::mul', 'Tensor')(xt, h(b, alpha!))), 'float32')
})
reg('Step', (b, {x}, {alpha}) => {
  const xt = h(b, x!)
  const stepped = b.op('aten::where', 'ScalarOther')(b.op('aten::gt', 'Scalar')(xt, 0), b.op('aten::ones_like')(xt), alpha)
  // NaN stays NaN, as in tfjs.
  return b.output(b.op('aten::where', 'self')(b.op('aten::isnan')(xt), xt, stepped), x!.dtype)
})
reg('EluGrad', (b, {dy, y}) =>
  b.output(b.op('aten::elu_backward')(h(b, dy!), 1, 1, 1, true, h(b, y!)), 'float32'))
reg('ClipByValue', (b, {x}, {clipValueMin, clipValueMax}) => b.output(b.op('aten::clamp')(h(b, x!), clipValueMin, clipValueMax), x!.dtype))
reg('Identity', (b, {x}) => b.alias(x!))
reg('Cast', (b, {x}, {dtype}) => {
  if (dtype === x!.dtype) return b.alias(x!)
  return b.output(b.op('aten::to', 'dtype')(h(b, x!), dtype), dtype)
})

/** Binary kernels: [ATen op, overload, result dtype ('upcast' = tfjs upcastType of the inputs)]. */
const BINARY: Record<string, [string, string, tf.DataType | 'upcast']> = {
  Add: ['aten::add', 'Tensor', 'upcast'],
  Sub: ['aten::sub', 'Tensor', 'upcast'],
  Multiply: ['aten::mul', 'Tensor', 'upcast'],
  RealDiv: ['aten::div', 'Tensor', 'float32'],
  Maximum: ['aten::maximum', '', 'upcast'],
  Minimum: ['aten::minimum', '', 'upcast'],
  Pow: ['aten::pow', 'Tensor_Tensor', 'upcast'],
  Mod: ['aten::remainder', 'Tensor', 'upcast'],
  Atan2: ['aten::atan2', '', 'float32'],
  Equal: ['aten::eq', 'Tensor', 'bool'],
  NotEqual: ['aten::ne', 'Tensor', 'bool'],
  Greater: ['aten::gt', 'Tensor', 'bool'],
  GreaterEqual: ['aten::ge', 'Tensor', 'bool'],
  Less: ['aten::lt', 'Tensor', 'bool'],
  LessEqual: ['aten::le', 'Tensor', 'bool'],
  LogicalAnd: ['aten::logical_and', '', 'bool'],
  LogicalOr: ['aten::logical_or', '', 'bool'],
  LogicalXor: ['aten::logical_xor', '', 'bool'],
}
for (const [name, [op, overload, out]] of Object.entries(BINARY)) {
  reg(name, (b, {a, b: bb}) => {
    const dtype = out === 'upcast' ? tf.backend_util.upcastType(a!.dtype, bb!.dtype) : out
    return b.output(b.op(op, overload)(h(b, a!), h(b, bb!)), dtype)
  })
}
reg('FloorDiv', (b, {a, b: bb}) =>
  b.output(b.op('aten::div', 'Tensor_mode')(h(b, a!), h(b, bb!), 'floor'), tf.backend_util.upcastType(a!.dtype, bb!.dtype)))
reg('SquaredDifference', (b, {a, b: bb}) => {
  const diff = b.op('aten::sub', 'Tensor')(h(b, a!), h(b, bb!))
  return b.output(b.op('aten::square')(diff), tf.backend_util.upcastType(a!.dtype, bb!.dtype))
})
reg('AddN', (b, inputs) => {
  const list = inputs as tf.TensorInfo[]
  let acc: TorchHandle = h(b, list[0]!)
  for (let i = 1; i < list.length; i++) acc = b.op('aten::add', 'Tensor')(acc, h(b, list[i]!))
  if (list.length === 1) acc = b.op('aten::clone')(acc)
  return b.output(acc, list[0]!.dtype)
})
reg('Select', (b, {condition, t, e}) => {
  let cond = h(b, condition!)
  // tfjs lets a rank-1 condition pick whole rows of higher-rank t/e.
  if (condition!.shape.length === 1 && t!.shape.length > 1) {
    cond = b.op('aten::reshape')(cond, [condition!.shape[0], ...t!.shape.slice(1).map(() => 1)])
  }
  return b.output(b.op('aten::where', 'self')(b.op('aten::to', 'dtype')(cond, 'bool'), h(b, t!), h(b, e!)), t!.dtype)
})

// ---------------------------------------------------------------------------------------------
// Matrix products

/**
 * The operands of a tfjs batch matmul as ATen tensors, transposed as asked. tfjs hands every matmul
 * over as rank 3, a plain 2-D product (every dense layer) as a batch of one: those come back as 2-D
 * views (`single`), so ATen runs one GEMM (mm/addmm) instead of its batched path, which on CPU is
 * about a quarter slower for the same product.
 */
function matmulOperands(b: TorchBackend, a: tf.TensorInfo, bb: tf.TensorInfo, transposeA: boolean, transposeB: boolean): {at: TorchHandle; bt: TorchHandle; single: boolean} {
  const single = a.shape.length === 3 && bb.shape.length === 3 && a.shape[0] === 1 && bb.shape[0] === 1
  let at = h(b, a)
  let bt = h(b, bb)
  if (single) {
    at = b.op('aten::select', 'int')(at, 0, 0)
    bt = b.op('aten::select', 'int')(bt, 0, 0)
  }
  if (transposeA) at = b.op('aten::transpose', 'int')(at, -1, -2)
  if (transposeB) bt = b.op('aten::transpose', 'int')(bt, -1, -2)
  return {at, bt, single}
}
function batchMatMul(b: TorchBackend, a: tf.TensorInfo, bb: tf.TensorInfo, transposeA: boolean, transposeB: boolean): TorchHandle {
  const {at, bt, single} = matmulOperands(b, a, bb, transposeA, transposeB)
  // Float products follow the backend's matmul precision (bf16 autocast); integer ones stay exact.
  const out = a.dtype === 'float32' ? b.matmul(at, bt) : b.op('aten::matmul')(at, bt)
  return single ? b.op('aten::unsqueeze')(out, 0) : out
}
reg('BatchMatMul', (b, {a, b: bb}, {transposeA, transposeB}) => b.output(batchMatMul(b, a!, bb!, transposeA, transposeB), a!.dtype))
reg('_FusedMatMul', (b, {a, b: bb, bias, preluActivationWeights}, {transposeA, transposeB, activation, leakyreluAlpha}) => {
  let out: TorchHandle
  const {at, bt, single} = matmulOperands(b, a!, bb!, transposeA, transposeB)
  if (single && bias && bias.shape.length <= 2 && a!.dtype === 'float32' && !b.bf16Matmul) {
    // A dense layer: bias + x W^T in one BLAS call.
    out = b.op('aten::unsqueeze')(b.op('aten::addmm')(h(b, bias), at, bt), 0)
  } else {
    out = a!.dtype === 'float32' ? b.matmul(at, bt) : b.op('aten::matmul')(at, bt)
    if (single) out = b.op('aten::unsqueeze')(out, 0)
    if (bias) out = b.op('aten::add', 'Tensor')(out, h(b, bias))
  }
  out = activate(b, out, activation, preluActivationWeights, leakyreluAlpha)
  return b.output(out, a!.dtype)
})
function activate(b: TorchBackend, x: TorchHandle, activation: string, prelu?: tf.TensorInfo, leakyAlpha?: number): TorchHandle {
  switch (activation) {
    case undefined:
    case 'linear':
      return x
    case 'relu':
      return b.op('aten::relu')(x)
    case 'relu6':
      return b.op('aten::clamp')(x, 0, 6)
    case 'elu':
      return b.op('aten::elu')(x)
    case 'sigmoid':
      return b.op('aten::sigmoid')(x)
    case 'leakyrelu':
      return b.op('aten::leaky_relu')(x, leakyAlpha ?? 0.2)
    case 'prelu':
      return b.op('aten::where', 'self')(b.op('aten::gt', 'Scalar')(x, 0), x, b.op('aten::mul', 'Tensor')(x, h(b, prelu!)))
    default:
      throw new Error(`torch backend: fused activation "${activation}" is not supported`)
  }
}
reg('Einsum', (b, inputs, {equation}) => {
  const list = inputs as tf.TensorInfo[]
  return b.output(b.op('aten::einsum')(equation, list.map((t) => h(b, t))), list[0]!.dtype)
})

// ---------------------------------------------------------------------------------------------
// Reductions

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

// ---------------------------------------------------------------------------------------------
// Shapes, slicing, joining

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
  return b.output(b.op('aten::cat')(list.map((t) => h(b, t)), ax), dtype)
})
reg('Pack', (b, inputs, {axis}) => {
  const list = inputs as tf.TensorInfo[]
  const ax = axis < 0 ? axis + list[0]!.shape.length + 1 : axis
  return b.output(b.op('aten::stack')(list.map((t) => h(b, t)), ax), list[0]!.dtype)
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

// ---------------------------------------------------------------------------------------------
// Gathers and scatters (ATen wants int64 indices)

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

// ---------------------------------------------------------------------------------------------
// Creation

reg('Fill', (b, _inputs, {shape, value, dtype}) => {
  if (dtype === 'string') throw new Error('the torch backend cannot fill string tensors')
  return b.output(b.op('aten::full')(shape, value, dtype, null, b.device), dtype)
})
reg('Range', (b, _inputs, {start, stop, step, dtype}) => {
  const n = Math.max(0, Math.ceil((stop - start) / step))
  if (n === 0) return b.output(b.op('aten::zeros')([0], dtype, null, b.device), dtype)
  // arange from integers keeps int32 exact; float ranges computed as start + i*step like tfjs.
  const i = b.op('aten::arange')(n, 'float32', null, b.device)
  return b.output(b.op('aten::add', 'Scalar')(b.op('aten::mul', 'Scalar')(i, step), start), dtype)
})
reg('LinSpace', (b, _inputs, {start, stop, num}) => b.output(b.op('aten::linspace')(start, stop, num, 'float32', null, b.device), 'float32'))

/** Registers every kernel above (idempotent through the module cache). */
export function torchKernelsRegistered(): number {
  return registered.length
}
