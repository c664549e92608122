/** Matrix-product kernels of the torch backend: BatchMatMul, _FusedMatMul (bias + activation) and Einsum. */
import * as tf from '@tensorflow/tfjs-core'
import type {TorchHandle} from '../addon.js'
import type {TorchBackend} from '../backend.js'
import {h, hs, registerTorchKernel as reg} from './registry.js'

/**
 * The operands of a tfjs batch matmul as ATen tensors, transposed as asked. tfjs hands every matmul
 * over as rank 3, a plain 2-D product (every dense layer) as a batch of one: those come back as 2-D
 * views (`single`), so ATen runs one GEMM (mm/addmm) instead of its batched path, which on CPU is
 * about a quarter slower for the same product.
 */
function matmulOperands(b: TorchBackend, a: tf.TensorInfo, bb: tf.TensorInfo, transposeA: boolean, transposeB: boolean): {at: TorchHandle; bt: TorchHandle; single: boolean} {
  const single = a.shape.length === 3 && bb.shape.length === 3 && a.shape[0] === 1 && bb.shape[0] === 1
  // Float operands as stored: b.matmul casts them to its precision (a bfloat16 activation uncopied).
  let at = hs(b, a)
  let bt = hs(b, bb)
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
  const float = a!.dtype === 'float32'
  if (single && bias && bias.shape.length <= 2 && float && (!b.bf16Matmul || b.bf16Activations)) {
    // A dense layer: bias + x W^T in one BLAS call (in bfloat16 with bf16 activations, as autocast's linear).
    const addmm = b.op('aten::addmm')
    out = b.bf16Activations ? addmm(b.toBf16(hs(b, bias)), b.toBf16(at), b.toBf16(bt)) : addmm(h(b, bias), at, bt)
    out = b.op('aten::unsqueeze')(out, 0)
  } else {
    out = float ? b.matmul(at, bt) : b.op('aten::matmul')(at, bt)
    if (single) out = b.op('aten::unsqueeze')(out, 0)
    // A bfloat16 product takes its bias in bfloat16 (a float32 one would widen it).
    if (bias) out = b.op('aten::add', 'Tensor')(out, float && b.bf16Activations ? b.toBf16(hs(b, bias)) : h(b, bias))
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
