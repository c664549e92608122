/**
 * The peak of live tensor memory during a computation, counted per data buffer: tfjs's engine keeps
 * one `tensorInfo` entry per data id with its byte size, however many tensors (clones, reshapes,
 * tape copies) share it, so the sum over entries is the memory the backend holds for tensors. That
 * is exact on the pure-JS cpu backend (one typed array per data id). tf.memory().numBytes counts
 * every tensor object instead, so a saved clone or a reshape counts its buffer twice.
 *
 * On torch the count leaves out what kernels keep beside their outputs (softmax probabilities,
 * dropout masks, layer-norm statistics) and counts an ATen view as its own buffer; it compares runs
 * on one backend but is not the device's allocation.
 */
import * as tf from '@tensorflow/tfjs-core'

interface EngineInternals {
  state: {tensorInfo: WeakMap<object, {bytes: number; backend: unknown}>}
  trackTensor(a: tf.Tensor, backend: unknown): void
  removeDataId(dataId: object, backend: unknown): void
}

/**
 * Runs fn and reports the peak, during it, of the bytes of tensor buffers created since it started
 * and not yet freed (buffers that existed before are not counted, and freeing one of them lowers
 * the count), and that count when fn returns.
 */
export async function peakTensorBytes<T>(fn: () => T | Promise<T>): Promise<{result: T; peakBytes: number; endBytes: number}> {
  const engine = tf.engine() as unknown as EngineInternals
  const info = engine.state.tensorInfo
  let live = 0
  let peakBytes = 0
  const {trackTensor, removeDataId} = engine
  engine.trackTensor = function (a, backend) {
    const fresh = !info.has(a.dataId)
    trackTensor.call(this, a, backend)
    if (fresh) {
      live += info.get(a.dataId)?.bytes ?? 0
      if (live > peakBytes) peakBytes = live
    }
  }
  engine.removeDataId = function (dataId, backend) {
    const entry = info.get(dataId)
    removeDataId.call(this, dataId, backend)
    if (entry && !info.has(dataId)) live -= entry.bytes
  }
  try {
    const result = await fn()
    return {result, peakBytes, endBytes: live}
  } finally {
    engine.trackTensor = trackTensor
    engine.removeDataId = removeDataId
  }
}
