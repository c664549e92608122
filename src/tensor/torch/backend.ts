import * as tf from '@tensorflow/tfjs-core'
import {loadTorchAddon, type AttentionKernel, type TorchAddon, type TorchDtype, type TorchHandle, type TorchOp} from './addon.js'
import {Ownership, RecordStore} from './records.js'

type DataId = object
type BackendValues = tf.backend_util.BackendValues

/**
 * What the backend keeps per tfjs data id. A tensor lives either as JS values (written by tfjs and
 * not yet used by a kernel, or a string tensor) or as an ATen tensor handle, created on first use.
 */
interface TensorRecord {
  handle?: TorchHandle
  values?: BackendValues
  dtype: tf.DataType
  /** The shape of `handle` (a kernel may see the data id under another shape; see handleOf). */
  shape: number[]
  refCount: number
  /** Tensors a fused kernel keeps for its gradient (softmax probabilities, layer-norm statistics). */
  extras?: TorchHandle[]
  /**
   * The handle holds bfloat16 storage behind a float32 tfjs tensor (a bf16 checkpoint's weights
   * under --precision bf16, see storeBf16): kernels get a float32 copy, made per use.
   */
  bf16?: boolean
}

/** tfjs dtypes as the addon names them. */
function torchDtype(dtype: tf.DataType): TorchDtype {
  switch (dtype) {
    case 'float32':
    case 'int32':
    case 'bool':
      return dtype
    default:
      throw new Error(`the torch backend does not support ${dtype} tensors`)
  }
}

/** The dtype codes of addon.conformTo (native/src/addon.cc kDtypeCodes). */
const DTYPE_CODES: Record<TorchDtype, number> = {float32: 0, int32: 1, bool: 2, int64: 3, float64: 4, float16: 5, bfloat16: 6, uint8: 7}

function sameShape(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * A TensorFlow.js KernelBackend whose tensors are libtorch (ATen) tensors on one device. Kernels are
 * registered separately (kernels/) for the backend name `torch`; they reach tensors through
 * handleOf() and return results through output().
 */
export class TorchBackend extends tf.KernelBackend {
  readonly addon: TorchAddon
  readonly device: string
  private readonly data: RecordStore<TensorRecord>
  private readonly ops = new Map<string, TorchOp>()
  private readonly opsByName = new Map<string, Map<string, TorchOp>>()
  private readonly isCuda: boolean
  private readonly owned: Ownership<TorchHandle>

  /**
   * `bf16`: matrix products (dense layers, attention scores and context, and their gradients) run
   * in bfloat16 with float32 results, like torch.autocast(dtype=bfloat16): parameters, optimizer
   * state, every other kernel and the loss stay float32.
   */
  readonly bf16Matmul: boolean

  /**
   * The attention kernel (native/src/attention.cc): `auto` (ATen's fused kernels where they apply,
   * else chunked) or one forced by name; CODIEMB_TORCH_ATTENTION sets it. Parity checks switch it.
   */
  attentionKernel: AttentionKernel = (process.env.CODIEMB_TORCH_ATTENTION as AttentionKernel | undefined) || 'auto'

  /** The path the last attention forward took (chunked, flash-cpu, flash, efficient, cudnn). */
  lastAttentionPath: string | undefined

  constructor(device = 'cpu', options: {bf16Matmul?: boolean} = {}) {
    super()
    this.addon = loadTorchAddon()
    this.device = device
    this.isCuda = device.startsWith('cuda')
    this.bf16Matmul = options.bf16Matmul ?? false
    this.data = new RecordStore(this, tf.engine())
    this.owned = new Ownership<TorchHandle>(this.addon, (h) => this.untemp(h))
  }

  /** a @ b (ATen matmul broadcasting) under the backend's matmul precision; the result is float32. */
  matmul(a: TorchHandle, b: TorchHandle): TorchHandle {
    if (!this.bf16Matmul) return this.op('aten::matmul')(a, b)
    const toBf16 = this.op('aten::to', 'dtype')
    const product = this.op('aten::matmul')(toBf16(a, 'bfloat16'), toBf16(b, 'bfloat16'))
    return toBf16(product, 'float32')
  }

  /** The ATen operator `name` (e.g. "aten::matmul") with `overload` ("" for the default one), bound once. */
  op(name: string, overload = ''): TorchOp {
    // Kernels look their operators up per call: by name then overload (literal strings, their hashes
    // cached), not by a key string built per call.
    const bound1 = this.opsByName.get(name)?.get(overload)
    if (bound1) return bound1
    const key = overload ? `${name}.${overload}` : name
    let fn = this.ops.get(key)
    if (!fn) {
      const bound = this.addon.op(name, overload)
      const temps = this.temps
      // Every result is a temporary of the running kernel until output()/stash() claims it.
      fn = (...args: unknown[]) => {
        const r = bound(...args)
        if (Array.isArray(r)) temps.push(...r.filter((x) => typeof x === 'object' && x !== null))
        else if (typeof r === 'object' && r !== null) temps.push(r)
        return r
      }
      this.ops.set(key, fn)
    }
    let byOverload = this.opsByName.get(name)
    if (!byOverload) this.opsByName.set(name, (byOverload = new Map()))
    byOverload.set(overload, fn)
    return fn
  }

  /**
   * Handles made during a kernel. Node-API finalizers run only when JS yields, so a synchronous
   * training step would pile up every temporary; kernels release theirs as they return instead.
   */
  private readonly temps: (TorchHandle | null)[] = []

  tempMark(): number {
    return this.temps.length
  }

  /** Frees the handles made since `mark` that did not become outputs or stashed state (claimed: null). */
  releaseTemps(mark: number): void {
    for (let i = mark; i < this.temps.length; i++) {
      const t = this.temps[i]
      if (t) this.addon.release(t)
    }
    this.temps.length = mark
  }

  /**
   * Takes `handle` out of the temporaries when it is one (it then outlives the kernel), so releaseTemps
   * needs no ownership lookups. Results are claimed about in the order they are made: the search from
   * the end is short.
   */
  private untemp(handle: TorchHandle): boolean {
    const temps = this.temps
    for (let i = temps.length - 1; i >= 0; i--) {
      if (temps[i] === handle) {
        temps[i] = null
        return true
      }
    }
    return false
  }

  /**
   * A kernel result about to become a data id's handle: claimed from the temporaries, or, when it
   * already is a data id's handle (a kernel returning an input unchanged), a fresh alias of it, since
   * disposing one data id would otherwise free the other's tensor.
   */
  private claim(handle: TorchHandle): TorchHandle {
    if (this.untemp(handle) || !this.owned.has(handle)) return handle
    const alias = this.op('aten::alias')(handle) as TorchHandle
    this.untemp(alias)
    return alias
  }

  // --- tensors in and out of kernels ---------------------------------------------------------

  /** The ATen tensor behind a kernel input, materialised from JS values on first use. */
  handleOf(info: tf.TensorInfo): TorchHandle {
    const rec = this.data.get(info.dataId)
    if (!rec) throw new Error('torch backend: tensor data not found (disposed, or from another backend)')
    if (!rec.handle) {
      if (rec.dtype === 'string') throw new Error('the torch backend cannot compute on string tensors')
      this.materialize(info)
    }
    // bf16 storage: every kernel and the optimizer compute on float32 (the cast is exact), so no
    // kernel needs a bf16 case and AdamW's update of a trainable weight comes out float32 (its master copy).
    const handle = rec.bf16 ? this.op('aten::to', 'dtype')(rec.handle, 'float32') : rec.handle
    // tfjs may hand a data id to a kernel under another shape of the same size; give ATen that view.
    if (!sameShape(rec.shape, info.shape)) return this.op('aten::reshape')(handle, info.shape)
    return handle
  }

  /**
   * Copies a tensor's JS values into an ATen tensor on the device now rather than at its first use,
   * and drops the JS values: loading a checkpoint so holds each weight once (src/tensor/storage.ts).
   */
  materialize(info: tf.TensorInfo): void {
    const rec = this.data.get(info.dataId)
    if (!rec || rec.handle || rec.dtype === 'string') return
    rec.handle = this.addon.fromArray(rec.values as ArrayBufferView, rec.shape, torchDtype(rec.dtype), this.isCuda ? this.device : undefined)
    this.owned.add(rec.handle)
    rec.values = undefined
  }

  /**
   * A float32 tfjs tensor whose storage stays bfloat16 (`bits`: the raw bf16 values, 2 bytes each),
   * halving its memory; kernels see float32 values (handleOf). Used for a bf16 checkpoint's weights
   * under --precision bf16.
   */
  storeBf16(bits: Uint16Array, shape: number[]): tf.Tensor {
    const handle = this.addon.fromArray(bits, shape, 'bfloat16', this.isCuda ? this.device : undefined)
    this.owned.add(handle)
    const dataId = {}
    this.data.set(dataId, {handle, dtype: 'float32', shape: [...shape], refCount: 1, bf16: true})
    return tf.engine().makeTensorFromTensorInfo({dataId, shape, dtype: 'float32'}, this)
  }

  /** The dtype a tensor is stored in (bfloat16 for storeBf16 tensors, else its tfjs dtype) and its bytes. */
  storage(t: tf.TensorInfo): {dtype: string; bytes: number} {
    const rec = this.data.get(t.dataId)
    if (!rec) throw new Error('torch backend: tensor data not found (disposed, or from another backend)')
    const count = rec.shape.reduce((a, b) => a * b, 1)
    // Ask ATen for the dtype of a materialised tensor rather than trusting the bookkeeping.
    const dtype = rec.handle ? this.addon.dtype(rec.handle) : rec.dtype
    const size: Record<string, number> = {bfloat16: 2, float16: 2, bool: 1, uint8: 1, float64: 8, int64: 8}
    return {dtype, bytes: count * (size[dtype] ?? 4)}
  }

  /** Registers an ATen result as a tfjs tensor of `dtype` (casting when ATen widened, e.g. int64 sums). */
  output(handle: TorchHandle, dtype: tf.DataType): tf.TensorInfo {
    // Each data id must own its handle (disposing one would free the other): a kernel that returns
    // an input's handle unchanged gets a fresh handle on the same tensor.
    handle = this.claim(handle)
    const shape = this.conform(handle, dtype)
    const dataId = {}
    this.data.set(dataId, {handle, dtype, shape, refCount: 1})
    return {dataId, shape, dtype}
  }

  /** The dims addon.conformTo writes a result's shape into (reused: one per backend). */
  private readonly dims = new Float64Array(64)

  /** addon.conform: casts a result to `dtype` when ATen widened it, marks it owned, returns its shape. */
  private conform(handle: TorchHandle, dtype: tf.DataType): number[] {
    const addon = this.addon
    if (!this.owned.native) {
      this.owned.add(handle)
      return addon.conform(handle, torchDtype(dtype))
    }
    const rank = addon.conformTo!(handle, DTYPE_CODES[torchDtype(dtype)], this.dims)
    const shape = new Array<number>(rank)
    for (let i = 0; i < rank; i++) shape[i] = this.dims[i]!
    return shape
  }

  /** A kernel output that shares an input's data (reshape-free identity, same-dtype cast). */
  alias(info: tf.TensorInfo): tf.TensorInfo {
    this.incRef(info.dataId)
    return {dataId: info.dataId, shape: info.shape, dtype: info.dtype}
  }

  /** Makes a tfjs Tensor from an ATen result (for code outside kernels: fused optimizers). */
  makeTensor(handle: TorchHandle, dtype: tf.DataType): tf.Tensor {
    return tf.engine().makeTensorFromTensorInfo(this.output(handle, dtype), this)
  }

  /** A scalar tensor on this backend's device. */
  scalar(value: number, dtype: TorchDtype = 'float32'): TorchHandle {
    const t = this.addon.scalar(value, dtype, this.isCuda ? this.device : undefined)
    this.temps.push(t)
    return t
  }

  /** A tensor built from JS values on this backend's device. */
  fromValues(values: ArrayBufferView, shape: number[], dtype: TorchDtype): TorchHandle {
    const t = this.addon.fromArray(values, shape, dtype, this.isCuda ? this.device : undefined)
    this.temps.push(t)
    return t
  }

  /** Keeps `handles` with an output until it is disposed (fused kernels' saved state for backward). */
  stash(info: tf.TensorInfo, handles: TorchHandle[]): void {
    for (const x of handles) this.untemp(x)
    this.data.get(info.dataId).extras = handles
  }

  stashed(info: tf.TensorInfo): TorchHandle[] | undefined {
    return this.data.get(info.dataId)?.extras
  }

  /** One AdamW step over many parameters in one native call (src/tensor/ops.ts adamwUpdate). */
  adamw(
    params: tf.Tensor[], grads: tf.Tensor[], m: tf.Tensor[], v: tf.Tensor[],
    hp: {learningRate: number; beta1: number; beta2: number; epsilon: number; weightDecay: number; step: number},
  ): [tf.Tensor[], tf.Tensor[], tf.Tensor[]] {
    // Outside any kernel: release the float32 copies handleOf makes of bf16-stored parameters here.
    const mark = this.tempMark()
    try {
      const hs = (ts: tf.Tensor[]) => ts.map((t) => this.handleOf(t))
      const [p2, m2, v2] = this.addon.adamw(hs(params), hs(grads), hs(m), hs(v), hp.learningRate, hp.beta1, hp.beta2, hp.epsilon, hp.weightDecay, hp.step)
      const wrap = (hs2: TorchHandle[]) => hs2.map((x) => this.makeTensor(x, 'float32'))
      return [wrap(p2), wrap(m2), wrap(v2)]
    } finally {
      this.releaseTemps(mark)
    }
  }

  // --- the KernelBackend contract ------------------------------------------------------------

  override write(values: BackendValues, shape: number[], dtype: tf.DataType): DataId {
    const dataId = {}
    this.data.set(dataId, {values: conformValues(values, dtype), dtype, shape, refCount: 1})
    return dataId
  }

  override move(dataId: DataId, values: BackendValues, shape: number[], dtype: tf.DataType, refCount: number): void {
    this.data.set(dataId, {values: conformValues(values, dtype), dtype, shape, refCount})
  }

  override async read(dataId: DataId): Promise<BackendValues> {
    return this.readSync(dataId)
  }

  override readSync(dataId: DataId): BackendValues {
    const rec = this.data.get(dataId)
    if (!rec) throw new Error('torch backend: reading a tensor that was disposed')
    if (!rec.handle) return rec.values!
    const out = this.addon.toArray(rec.handle)
    return out as BackendValues
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const rec = this.data.get(dataId)
    if (!rec) return true
    rec.refCount--
    if (!force && rec.refCount > 0) return false
    if (rec.handle) this.addon.release(rec.handle)
    if (rec.extras) for (const e of rec.extras) this.addon.release(e)
    this.data.delete(dataId)
    return true
  }

  override refCount(dataId: DataId): number {
    return this.data.has(dataId) ? this.data.get(dataId).refCount : 0
  }

  override incRef(dataId: DataId): void {
    this.data.get(dataId).refCount++
  }

  /** Used by kernels for their intermediate TensorInfos (tfjs convention). */
  disposeIntermediateTensorInfo(info: tf.TensorInfo): void {
    this.disposeData(info.dataId)
  }

  override numDataIds(): number {
    return this.data.numDataIds()
  }

  override memory(): {unreliable: boolean; reasons?: string[]} {
    return {unreliable: true, reasons: ['ATen views share storage, so the bytes tfjs counts are an upper bound']}
  }

  override timerAvailable(): boolean {
    return true
  }

  override async time(f: () => void): Promise<tf.BackendTimingInfo> {
    const start = performance.now()
    f()
    if (this.isCuda) this.addon.synchronize(deviceIndex(this.device))
    return {kernelMs: performance.now() - start}
  }

  override floatPrecision(): 16 | 32 {
    return 32
  }

  override epsilon(): number {
    return 1e-7
  }

  override dispose(): void {
    // Handles are released by disposeData; anything left is freed by the GC finalizers.
  }
}

function deviceIndex(device: string): number {
  const m = /^cuda:(\d+)$/.exec(device)
  return m ? Number(m[1]) : 0
}

/** tfjs sometimes writes values in a wider array than the dtype (e.g. a Float32Array for int32). */
function conformValues(values: BackendValues, dtype: tf.DataType): BackendValues {
  if (dtype === 'float32' && !(values instanceof Float32Array)) return Float32Array.from(values as ArrayLike<number>)
  if (dtype === 'int32' && !(values instanceof Int32Array)) return Int32Array.from(values as ArrayLike<number>)
  if (dtype === 'bool' && !(values instanceof Uint8Array)) return Uint8Array.from(values as ArrayLike<number>)
  return values
}
