/**
 * Storage precision of weights, separate from the precision kernels compute in.
 *
 * Under `--precision bf16` the torch backend keeps a bf16 checkpoint's weights in bfloat16 (2 bytes
 * a value instead of 4) while tfjs sees float32 tensors: the backend hands a kernel a float32 copy
 * per use (exact, bf16 ⊂ float32), except the kernels that autocast runs in their input's dtype
 * (matrix products, reshapes, adds, GELU, dropout, attention), which take the bfloat16 tensor; its
 * activations stay bfloat16 the same way (backend.ts bf16Activations). Trainable weights become float32 at their first AdamW update — the float32 master
 * copy the optimizer needs, alongside float32 moments — while frozen and inference-only weights
 * (embed, eval, merge inputs) stay bfloat16 for the whole run. Other backends and precisions keep
 * every weight in float32.
 *
 * Relations: src/tensor/torch/backend.ts (storeBf16, storage, handleOf) implements it;
 * src/model/load-weights.ts loads weights through weightTensor / bf16BitsTensor, one tensor at a time,
and src/model/encoder.ts saves each tensor in its checkpoint dtype.
 */
import * as tf from '@tensorflow/tfjs-core'

/** What a backend with bf16 storage offers (the torch backend). */
interface Bf16StorageBackend {
  bf16Matmul: boolean
  storeBf16(bits: Uint16Array, shape: number[]): tf.Tensor
  storage(t: tf.TensorInfo): {dtype: string; bytes: number}
  /** Moves a tensor's JS values into backend memory now (the torch backend's ATen tensors). */
  materialize?(t: tf.TensorInfo): void
}

function storageBackend(): Bf16StorageBackend | undefined {
  const b = tf.backend() as unknown as Partial<Bf16StorageBackend>
  return typeof b.storeBf16 === 'function' && typeof b.storage === 'function' ? (b as Bf16StorageBackend) : undefined
}

/**
 * Whether the active backend runs matrix products in bfloat16 (the torch backend under --precision
 * bf16): code that must stay float32, such as a norm's statistics, then avoids matmuls.
 */
export function matmulsInBf16(): boolean {
  return storageBackend()?.bf16Matmul === true
}

/**
 * Whether the active backend keeps activations in bfloat16 between kernels (the torch backend under
 * --precision bf16, backend.ts bf16Activations): ops.linear then keeps the bfloat16 copy of its
 * input for backward, as autocast's linear does, instead of the float32 original.
 */
export function activationsInBf16(): boolean {
  return (tf.backend() as unknown as {bf16Activations?: boolean}).bf16Activations === true
}

/**
 * Whether a backend with fused kernels (torch) keeps bf16 activations at `precision`: under bf16,
 * unless CODIEMB_TORCH_BF16_ACTIVATIONS=0 (float32 activations, products cast per call, to compare).
 * The backend and the memory plan both ask here.
 */
export function bf16ActivationsAt(precision: string): boolean {
  return precision === 'bf16' && process.env.CODIEMB_TORCH_BF16_ACTIVATIONS !== '0'
}

/** Whether the active backend keeps bf16 weights in bfloat16 (the torch backend under --precision bf16). */
export function keepsBf16Weights(): boolean {
  return storageBackend()?.bf16Matmul === true
}

/**
 * A float32 tensor of `values` — which must be bfloat16 values, e.g. read from a BF16 tensor of a
 * checkpoint — stored in bfloat16 where the backend keeps bf16 weights, else in float32. A value
 * that is not a bfloat16 is refused rather than silently rounded.
 */
export function bf16Tensor(values: Float32Array, shape: number[]): tf.Tensor {
  const backend = keepsBf16Weights() ? storageBackend() : undefined
  if (!backend) return tf.tensor(values, shape, 'float32')
  const words = new Uint32Array(values.buffer, values.byteOffset, values.length)
  const bits = new Uint16Array(values.length)
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!
    if ((w & 0xffff) !== 0) throw new Error(`bf16Tensor: value ${values[i]} at index ${i} is not a bfloat16`)
    bits[i] = w >>> 16
  }
  return backend.storeBf16(bits, shape)
}

/**
 * A float32 weight tensor of `values`, in backend memory at once: the torch backend copies the values
 * into an ATen tensor now (they would otherwise stay in JS until the first kernel reads them), so a
 * caller that drops `values` holds the weight once. The cpu backend keeps `values` itself (no copy).
 */
export function weightTensor(values: Float32Array, shape: number[]): tf.Tensor {
  const t = tf.tensor(values, shape, 'float32')
  storageBackend()?.materialize?.(t)
  return t
}

/**
 * A weight stored in bfloat16 from its raw bits (2 bytes a value, as a BF16 checkpoint holds them),
 * without a float32 copy on the way; only where the backend keeps bf16 weights (keepsBf16Weights).
 */
export function bf16BitsTensor(bits: Uint16Array, shape: number[]): tf.Tensor {
  const backend = keepsBf16Weights() ? storageBackend() : undefined
  if (!backend) throw new Error('bf16BitsTensor: the active backend does not keep bf16 weights (torch with --precision bf16 does)')
  return backend.storeBf16(bits, shape)
}

/** The dtype a tensor is stored in (`bfloat16` for bf16-stored weights, else its tfjs dtype) and its bytes. */
export function tensorStorage(t: tf.Tensor): {dtype: string; bytes: number} {
  const backend = storageBackend()
  if (backend) return backend.storage(t)
  return {dtype: t.dtype, bytes: t.size * (t.dtype === 'bool' ? 1 : 4)}
}
