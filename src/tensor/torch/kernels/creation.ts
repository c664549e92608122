/** Creation kernels of the torch backend: Fill, Range, LinSpace (on the backend's device). */
import {registerTorchKernel as reg} from './registry.js'

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
