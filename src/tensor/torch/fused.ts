import * as tf from '@tensorflow/tfjs-core'
import type {AttentionKernel, AttentionNativeOptions, TorchHandle} from './addon.js'
import type {TorchBackend} from './backend.js'
import {registerTorchKernel} from './kernels/registry.js'
import {FUSED} from '../fused-names.js'
import {recordingGradients} from '../backprop.js'

/**
 * The torch implementations of codiemb's fused kernels (names and gradients in src/tensor/ops.ts).
 * Forward kernels keep what their backward needs (attention's per-row log-sum-exp, layer-norm
 * mean/rstd, dropout masks) with their output when the gradient tape is recording, so backward recomputes
 * nothing; the kept tensors are freed with the output.
 */

type Inputs = Record<string, tf.TensorInfo>
type Attrs = Record<string, any>
const reg = registerTorchKernel

// Inside a kernel the engine's kernelDepth is 1, so isTapeOn() reads false: recordingGradients()
// (the gradient depth) says whether a tf.grad / variableGrads is recording.
const h = (b: TorchBackend, t: tf.TensorInfo): TorchHandle => b.handleOf(t)
// As stored (bfloat16 for a bf16 activation): GELU, dropout and attention compute in their input's
// dtype, as torch.autocast runs them; layer norm, like autocast's float32 list, takes float32.
const hs = (b: TorchBackend, t: tf.TensorInfo): TorchHandle => b.storedHandleOf(t)
/** `dy` in `like`'s dtype: a gradient may arrive float32 for a bfloat16 activation, or the reverse. */
const gradLike = (b: TorchBackend, dy: tf.TensorInfo, like: TorchHandle): TorchHandle => {
  const g = hs(b, dy)
  return b.bf16Activations ? b.op('aten::to', 'other')(g, like) : g
}

// GELU: aten::gelu / aten::gelu_backward (approximate "none" = erf, "tanh").
reg(FUSED.gelu, (b, {x}, {approximate}) => b.output(b.op('aten::gelu')(hs(b, x!), approximate ?? 'none'), 'float32'))
reg(FUSED.geluGrad, (b, {dy, x}, {approximate}) => {
  const xt = hs(b, x!)
  return b.output(b.op('aten::gelu_backward')(gradLike(b, dy!, xt), xt, approximate ?? 'none'), 'float32')
})

// Layer norm over the last axis: aten::native_layer_norm and its backward. Its mean and rstd are
// kept with the input x, under gamma's data id, as PyTorch keeps them: the gradient needs x, not y,
// so the output is freed once the layers after it are done with it (under bf16 activations the
// next dense layer keeps only its bfloat16 copy).
reg(FUSED.layerNorm, (b, {x, gamma, beta}, {epsilon}) => {
  const last = x!.shape[x!.shape.length - 1]!
  const [y, mean, rstd] = b.op('aten::native_layer_norm')(h(b, x!), [last], h(b, gamma!), h(b, beta!), epsilon) as TorchHandle[]
  const out = b.output(y!, 'float32')
  if (!recordingGradients() || !b.stash(x!, [mean!, rstd!], gamma!.dataId)) {
    b.addon.release(mean!)
    b.addon.release(rstd!)
  }
  return out
})
reg(FUSED.layerNormGrad, (b, {dy, x, gamma, beta}, {epsilon}) => {
  const last = x!.shape[x!.shape.length - 1]!
  let stats = b.stashed(x!, gamma!.dataId)
  if (!stats) {
    const [, mean, rstd] = b.op('aten::native_layer_norm')(h(b, x!), [last], h(b, gamma!), h(b, beta!), epsilon) as TorchHandle[]
    stats = [mean!, rstd!]
  }
  const [dx, dgamma, dbeta] = b.op('aten::native_layer_norm_backward')(
    h(b, dy!), h(b, x!), [last], stats[0], stats[1], h(b, gamma!), h(b, beta!), [true, true, true],
  ) as TorchHandle[]
  return [b.output(dx!, 'float32'), b.output(dgamma!, 'float32'), b.output(dbeta!, 'float32')]
})

// Dropout: the output and its boolean mask, both as outputs (ops.dropout's gradient keeps the mask
// alone); backward scales dy by the mask (aten::native_dropout_backward). On the CPU the mask comes
// from the addon's counter-based generator, drawn in parallel: libtorch 1.13's native_dropout draws
// it serially (bernoulli_), about as long as the dense layer before it.
reg(FUSED.dropout, (b, {x}, {rate, seed}) => {
  let y: TorchHandle | undefined
  let mask: TorchHandle | undefined
  if (b.device === 'cpu' && x!.dtype === 'float32' && !b.isBf16(x!) && b.addon.dropout) {
    ;[y, mask] = b.addon.dropout(h(b, x!), rate, seed)
  } else {
    if (seed != null) b.addon.manualSeed(seed)
    ;[y, mask] = b.op('aten::native_dropout')(hs(b, x!), rate, true) as TorchHandle[]
  }
  return [b.output(y!, 'float32'), b.output(mask!, 'bool')]
})
reg(FUSED.dropoutGrad, (b, {dy, mask}, {rate}) => b.output(b.op('aten::native_dropout_backward')(hs(b, dy!), h(b, mask!), 1 / (1 - rate)), 'float32'))

// Storage casts (ops.linear under bf16 activations): a float32 tensor stored as `to`, the input
// itself when it already is, or when the backend keeps no bf16 activations.
reg(FUSED.storageCast, (b, {x}, {to}) => {
  const bf16 = b.isBf16(x!)
  if (to === 'bfloat16' ? bf16 || !b.bf16Activations : !bf16) return b.alias(x!)
  return b.output(b.op('aten::to', 'dtype')(hs(b, x!), to), 'float32')
})

// Dense layers (ops.linear): y = x Wᵀ + b on 2-D views of x and dy, one BLAS call per product.
// tfjs's matMul hands every product over as a batch, three Reshape kernels around each: a dense
// layer's forward and backward were 14 tfjs kernels, about a third of a small model's host time on a GPU.
const rows2d = (b: TorchBackend, t: TorchHandle, shape: number[]): TorchHandle =>
  shape.length === 2 ? t : b.op('aten::reshape')(t, [-1, shape[shape.length - 1]!])
const unrows = (b: TorchBackend, t: TorchHandle, lead: number[], last: number): TorchHandle =>
  lead.length === 1 ? t : b.op('aten::reshape')(t, [...lead, last])
reg(FUSED.linear, (b, {x, weight, bias}) => {
  const xt = rows2d(b, hs(b, x!), x!.shape)
  const wt = b.op('aten::t')(hs(b, weight!))
  let out: TorchHandle
  if (bias && (!b.bf16Matmul || b.bf16Activations)) {
    // Bias and product in one addmm (in bfloat16 with bf16 activations, as autocast's linear).
    const addmm = b.op('aten::addmm')
    out = b.bf16Activations ? addmm(b.toBf16(hs(b, bias)), b.toBf16(xt), b.toBf16(wt)) : addmm(h(b, bias), xt, wt)
  } else {
    out = b.matmul(xt, wt)
    if (bias) out = b.op('aten::add', 'Tensor')(out, h(b, bias))
  }
  return b.output(unrows(b, out, x!.shape.slice(0, -1), weight!.shape[0]!), 'float32')
})
// dx = dy W, stored as `storage` says (ops.linear: its input's storage dtype under bf16 activations).
reg(FUSED.linearInputGrad, (b, {dy, weight}, {storage}) => {
  let dx = b.matmul(rows2d(b, hs(b, dy!), dy!.shape), hs(b, weight!))
  if (b.bf16Activations && (storage === 'bfloat16') !== (b.addon.dtype(dx) === 'bfloat16')) dx = b.op('aten::to', 'dtype')(dx, storage)
  return b.output(unrows(b, dx, dy!.shape.slice(0, -1), weight!.shape[1]!), 'float32')
})
// dW = dyᵀ x over all rows, float32 (a master weight's gradient), and with `bias` db = Σ_rows dy
// (float32) as a second output: one kernel where a Sum kernel followed.
reg(FUSED.linearWeightGrad, (b, {dy, x}, {bias}) => {
  const dy2 = rows2d(b, hs(b, dy!), dy!.shape)
  let dw = b.matmul(b.op('aten::t')(dy2), rows2d(b, hs(b, x!), x!.shape))
  if (b.addon.dtype(dw) !== 'float32') dw = b.op('aten::to', 'dtype')(dw, 'float32')
  if (!bias) return b.output(dw, 'float32')
  return [b.output(dw, 'float32'), b.output(b.op('aten::sum', 'dim_IntList')(dy2, [0], false, 'float32'), 'float32')]
})

// Scaled dot-product attention, memory-efficient (native/src/attention.cc): the forward keeps, with
// its output, the per-row log-sum-exp (and a fused kernel's RNG state), never the probabilities;
// the backward recomputes them block by block or through ATen's fused backward.
const ATTENTION_KERNELS: readonly AttentionKernel[] = ['auto', 'chunked', 'chunked-composite', 'flash-cpu', 'flash', 'efficient', 'cudnn']

function attentionOptions(b: TorchBackend, {scale, dropoutRate, seed, blockRows}: Attrs): AttentionNativeOptions {
  if (!ATTENTION_KERNELS.includes(b.attentionKernel)) {
    throw new Error(`unknown attention kernel "${b.attentionKernel}" (CODIEMB_TORCH_ATTENTION: expected ${ATTENTION_KERNELS.join(', ')})`)
  }
  return {scale, dropout: dropoutRate, seed, blockRows, bf16: b.bf16Matmul && !float32Attention(b), kernel: b.attentionKernel}
}

/**
 * With bf16 activations on the CPU, attention computes in float32 from float32 copies of q, k and v:
 * libtorch's CPU has no bfloat16 attention kernel, so bf16 products would take the chunked path's
 * composite form, slower and holding several float32 block temporaries besides the bf16 ones.
 */
const float32Attention = (b: TorchBackend): boolean => b.bf16Activations && b.device === 'cpu'
/** An attention operand: as stored (bfloat16 activations go to the fused kernels as they are), or float32 (float32Attention). */
const operand = (b: TorchBackend, t: tf.TensorInfo): TorchHandle => (float32Attention(b) ? h(b, t) : hs(b, t))

function attentionForward(b: TorchBackend, {q, k, v, maskBias}: Inputs, attrs: Attrs): tf.TensorInfo {
  const save = recordingGradients()
  const [out, saved, path] = b.addon.attention(operand(b, q!), operand(b, k!), operand(b, v!), maskBias ? h(b, maskBias) : null, attentionOptions(b, attrs), save)
  b.lastAttentionPath = path
  // With bfloat16 inputs the output is kept in bfloat16, as autocast's attention returns it: ATen's
  // fused kernels return it so; the chunked path and the CPU's float32 attention return float32.
  const info = b.output(keptOutput(b, out, b.isBf16(q!)), 'float32')
  if (save) b.stash(info, saved)
  return info
}
/**
 * Attention's output as kept: bfloat16 for bfloat16 inputs under bf16 activations, else as returned.
 * The addon's results are no kernel temporaries: a float32 output replaced by its copy is freed here.
 */
function keptOutput(b: TorchBackend, out: TorchHandle, bf16Inputs: boolean): TorchHandle {
  if (!(b.bf16Activations && bf16Inputs) || b.addon.dtype(out) === 'bfloat16') return out
  const kept = b.toBf16(out)
  b.addon.release(out)
  return kept
}
reg(FUSED.attention, attentionForward)
reg(FUSED.attentionMasked, attentionForward)

/**
 * The state attention's forward kept with its output y, or, when it kept none (a forward run with the
 * tape off) and there is no dropout, that state recomputed by the chunked kernel: `recomputed`, which
 * the caller releases.
 */
function forwardState(
  b: TorchBackend, kernel: string, y: tf.TensorInfo, [q, k, v]: TorchHandle[], bias: TorchHandle | null, options: AttentionNativeOptions,
): {saved: TorchHandle[]; recomputed?: TorchHandle[]} {
  const saved = b.stashed(y)
  if (saved) return {saved}
  if (options.dropout > 0) throw new Error(`${kernel}: the forward pass kept no attention state (was the tape off?)`)
  const [out, state] = b.addon.attention(q!, k!, v!, bias, {...options, kernel: 'chunked'}, true)
  b.addon.release(out)
  return {saved: state, recomputed: state}
}

function attentionBackward(b: TorchBackend, {dy, q, k, v, maskBias, y}: Inputs, attrs: Attrs, wantQkv: boolean, wantBias: boolean): tf.TensorInfo[] {
  const options = attentionOptions(b, attrs)
  const bias = maskBias ? h(b, maskBias) : null
  const qkv = [q!, k!, v!].map((t) => operand(b, t))
  const {saved, recomputed} = forwardState(b, FUSED.attentionGrad, y!, qkv, bias, options)
  try {
    const grads = b.addon.attentionBackward(operand(b, dy!), qkv[0]!, qkv[1]!, qkv[2]!, bias, operand(b, y!), saved, options, wantQkv, wantBias)
    return grads.map((g) => b.output(g, 'float32'))
  } finally {
    for (const t of recomputed ?? []) b.addon.release(t)
  }
}
reg(FUSED.attentionGrad, (b, inputs, attrs) => attentionBackward(b, inputs, attrs, true, false))
reg(FUSED.attentionMaskGrad, (b, inputs, attrs) => attentionBackward(b, inputs, attrs, false, true)[0]!)

// Attention on the packed projection of a BERT layer (ops.packedAttention): q, k and v are views of
// its [B·T, 3·H] output, the context comes back as [B·T, H] rows and the gradient as one [B·T, 3·H]
// tensor. The same native kernels as above, without the split, the three head reshapes and
// transposes, and the context's transpose and reshape that tfjs ran as ten kernels per layer, each
// with its gradient: on a small model's GPU step, host time rather than arithmetic.
function packedViews(b: TorchBackend, info: tf.TensorInfo, {batch, heads}: Attrs, parts: number): TorchHandle[] {
  const [rows, width] = info.shape as [number, number]
  const T = rows / batch
  const d = width / parts / heads
  // [B, T, parts, heads, d] -> [parts, B, heads, T, d]; on the CPU copied once into that layout (and
  // to float32 for float32Attention in the same pass), as the chunked kernel multiplies block by block
  // and a strided k or v would be copied for every block (ATen's CUDA kernels take rows with a unit
  // last stride as they are).
  const stored = hs(b, info)
  let x = b.op('aten::permute')(b.op('aten::reshape')(stored, [batch, T, parts, heads, d]), [2, 0, 3, 1, 4])
  if (float32Attention(b) && b.addon.dtype(stored) !== 'float32') {
    x = b.op('aten::copy_')(b.op('aten::empty', 'memory_format')([parts, batch, heads, T, d], 'float32', null, b.device), x)
  } else if (b.device === 'cpu') x = b.op('aten::contiguous')(x)
  return Array.from({length: parts}, (_, i) => b.op('aten::select', 'int')(x, 0, i))
}
/** [B, heads, T, d] -> [B·T, heads·d] rows (a copy: the transpose is not a view of rows). */
const packedRows = (b: TorchBackend, t: TorchHandle, rows: number, width: number): TorchHandle =>
  b.op('aten::reshape')(b.op('aten::transpose', 'int')(t, 1, 2), [rows, width])

function packedAttentionForward(b: TorchBackend, {qkv, maskBias}: Inputs, attrs: Attrs): tf.TensorInfo {
  const save = recordingGradients()
  const [rows, width] = qkv!.shape as [number, number]
  const [q, k, v] = packedViews(b, qkv!, attrs, 3)
  const [out, saved, path] = b.addon.attention(q!, k!, v!, maskBias ? h(b, maskBias) : null, attentionOptions(b, attrs), save)
  b.lastAttentionPath = path
  const context = packedRows(b, out, rows, width / 3)
  b.addon.release(out)
  const info = b.output(keptOutput(b, context, b.isBf16(qkv!)), 'float32')
  if (save) b.stash(info, saved)
  return info
}
reg(FUSED.packedAttention, packedAttentionForward)
reg(FUSED.packedAttentionMasked, packedAttentionForward)

// d qkv [B·T, 3·H] (wrt "qkv") or d maskBias (wrt "maskBias") from dy and y, both [B·T, H].
reg(FUSED.packedAttentionGrad, (b, {dy, qkv, maskBias, y}, attrs) => {
  const [rows, width] = qkv!.shape as [number, number]
  const [q, k, v] = packedViews(b, qkv!, attrs, 3)
  const [yh] = packedViews(b, y!, attrs, 1)
  const [dyh] = packedViews(b, dy!, attrs, 1)
  const options = attentionOptions(b, attrs)
  const bias = maskBias ? h(b, maskBias) : null
  const {saved, recomputed} = forwardState(b, FUSED.packedAttentionGrad, y!, [q!, k!, v!], bias, options)
  const wantQkv = attrs.wrt !== 'maskBias'
  let grads: TorchHandle[] = []
  try {
    grads = b.addon.attentionBackward(dyh!, q!, k!, v!, bias, yh!, saved, options, wantQkv, !wantQkv)
    if (!wantQkv) return b.output(grads[0]!, 'float32')
    // [B, heads, T, d] x 3 -> [B, T, 3, heads, d] -> [B·T, 3·H]
    const stacked = b.op('aten::stack')(grads.map((g) => b.op('aten::transpose', 'int')(g, 1, 2)), 2)
    return b.output(b.op('aten::reshape')(stacked, [rows, width]), 'float32')
  } finally {
    if (wantQkv) for (const g of grads) b.addon.release(g)
    for (const t of recomputed ?? []) b.addon.release(t)
  }
})
