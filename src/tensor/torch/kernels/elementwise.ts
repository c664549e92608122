/** Element-wise kernels of the torch backend: unary math, comparisons, binary arithmetic with tfjs's result dtypes, casts and selects. */
import * as tf from '@tensorflow/tfjs-core'
import type {TorchHandle} from '../addon.js'
import {h, hs, registerTorchKernel as reg} from './registry.js'

/** Unary kernels whose result has the input's dtype. */
const SAME_DTYPE_UNARY: Record<string, string> = {
  Abs: 'aten::abs', Square: 'aten::square', Sign: 'aten::sign', Floor: 'aten::floor', Ceil: 'aten::ceil',
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
reg('Neg', (b, {x}) => b.output(b.op('aten::neg')(hs(b, x!)), x!.dtype))
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

/**
 * Binary kernels: [ATen op, overload, result dtype ('upcast' = tfjs upcastType of the inputs)].
 * Add, Sub, Multiply and RealDiv compute in their inputs' stored dtype, as autocast runs them: on
 * bfloat16 activations in bfloat16; a bfloat16 and a float32 tensor give float32 (ATen's promotion),
 * a bfloat16 tensor and a scalar bfloat16.
 */
const AUTOCAST_BINARY = new Set(['Add', 'Sub', 'Multiply', 'RealDiv'])
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
  const input = AUTOCAST_BINARY.has(name) ? hs : h
  reg(name, (b, {a, b: bb}) => {
    const dtype = out === 'upcast' ? tf.backend_util.upcastType(a!.dtype, bb!.dtype) : out
    return b.output(b.op(op, overload)(input(b, a!), input(b, bb!)), dtype)
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
  // Summed in the inputs' stored dtypes (gradients of bf16 activations stay bfloat16).
  let acc: TorchHandle = hs(b, list[0]!)
  for (let i = 1; i < list.length; i++) acc = b.op('aten::add', 'Tensor')(acc, hs(b, list[i]!))
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
