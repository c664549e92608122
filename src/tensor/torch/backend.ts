import * as tf from '@tensorflow/tfjs-core'
import {bf16ActivationsAt} from '../storage.js'
import {LiveBytes} from './live-bytes.js'
import {conformValues, deviceIndex, DTYPE_CODES, sameShape, torchDtype} from './values.js'
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
  /** Tensors a fused kernel keeps for its gradient (attention's log-sum-exp, layer-norm statistics). */
  extras?: TorchHandle[]
  /** Whose extras these are (stash's key), when they hang on a tensor the kernel did not make. */
  extrasKey?: object
  /**
   * The handle holds bfloat16 storage behind a float32 tfjs tensor: a bf16 checkpoint's weights
   * under --precision bf16 (storeBf16), or a bf16 activation (bf16Activations). handleOf gives
   * kernels a float32 copy, made per use; storedHandleOf the bfloat16 tensor itself.
   */
  bf16?: boolean
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
   * With bf16 products: whether their results stay bfloat16 (behind float32 tfjs tensors) through the
   * kernels that torch.autocast runs in the input's dtype (reshapes, slices, adds, GELU, dropout,
   * attention inputs), so activations kept for backward take half the bytes and element-wise passes
   * half the bandwidth; every other kernel (reductions, softmax, layer norm, exp/log, the loss) casts
   * its inputs to float32 first, as autocast's float32 list does. On by default with bf16;
   * CODIEMB_TORCH_BF16_ACTIVATIONS=0 keeps float32 activations (products cast per call), to compare.
   */
  readonly bf16Activations: boolean

  /**
   * The attention kernel (native/src/attention.cc): `auto` (ATen's fused kernels where they apply,
   * else chunked) or one forced by name; CODIEMB_TORCH_ATTENTION sets it. Parity checks switch it.
   */
  attentionKernel: AttentionKernel = (process.env.CODIEMB_TORCH_ATTENTION as AttentionKernel | undefined) || 'auto'

  /** The path the last attention forward took (chunked, flash-cpu, flash, efficient, cudnn). */
  lastAttentionPath: string | undefined

  constructor(device = 'cpu', options: {bf16Matmul?: boolean; bf16Activations?: boolean} = {}) {
    super()
    this.addon = loadTorchAddon()
    this.device = device
    this.isCuda = device.startsWith('cuda')
    this.bf16Matmul = options.bf16Matmul ?? false
    this.bf16Activations = this.bf16Matmul && (options.bf16Activations ?? bf16ActivationsAt('bf16'))
    this.data = new RecordStore(this, tf.engine())
    this.owned = new Ownership<TorchHandle>(this.addon, (h) => this.untemp(h))
  }

  /**
   * a @ b (ATen matmul broadcasting) under the backend's matmul precision: float32, or bfloat16
   * operands with a bfloat16 result (bf16Activations) or one cast back to float32.
   */
  matmul(a: TorchHandle, b: TorchHandle): TorchHandle {
    if (!this.bf16Matmul) return this.op('aten::matmul')(a, b)
    const product = this.op('aten::matmul')(this.toBf16(a), this.toBf16(b))
    return this.bf16Activations ? product : this.op('aten::to', 'dtype')(product, 'float32')
  }

  /** `t` in bfloat16 (itself when it already is: ATen's to() then returns its input). */
  toBf16(t: TorchHandle): TorchHandle {
    return this.op('aten::to', 'dtype')(t, 'bfloat16')
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
    // bf16 storage: kernels outside the bf16Activations list and the optimizer compute on float32
    // (the cast is exact), so they need no bf16 case and AdamW's update of a trainable weight comes
    // out float32 (its master copy).
    const handle = rec.bf16 ? this.op('aten::to', 'dtype')(rec.handle, 'float32') : rec.handle
    // tfjs may hand a data id to a kernel under another shape of the same size; give ATen that view.
    if (!sameShape(rec.shape, info.shape)) return this.op('aten::reshape')(handle, info.shape)
    return handle
  }

  /**
   * The ATen tensor behind a float kernel input as it is stored: bfloat16 for a bf16 activation or
   * weight, where handleOf gives a float32 copy. For kernels that compute in their input's dtype
   * (the bf16Activations list); they must accept a mix of float32 and bfloat16 inputs.
   */
  storedHandleOf(info: tf.TensorInfo): TorchHandle {
    const rec = this.data.get(info.dataId)
    if (!rec?.bf16) return this.handleOf(info)
    if (!sameShape(rec.shape, info.shape)) return this.op('aten::reshape')(rec.handle!, info.shape)
    return rec.handle!
  }

  /** Whether a tensor's storage is bfloat16 behind its float32 tfjs dtype. */
  isBf16(info: tf.TensorInfo): boolean {
    return this.data.get(info.dataId)?.bf16 === true
  }

  /**
   * Copies a tensor's JS values into an ATen tensor on the device now rather than at its first use,
   * and drops the JS values: loading a checkpoint so holds each weight once (src/tensor/storage.ts).
   */
  materialize(info: tf.TensorInfo): void {
    const rec = this.data.get(info.dataId)
    if (!rec || rec.handle || rec.dtype === 'string') return
    rec.handle = this.addon.fromArray(rec.values as ArrayBufferView, rec.shape, torchDtype(rec.dtype), this.isCuda ? this.device : undefined)
    this.live.count(rec, 1)
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
    const rec: TensorRecord = {handle, dtype: 'float32', shape: [...shape], refCount: 1, bf16: true}
    this.data.set(dataId, rec)
    this.live.count(rec, 1)
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
    const dataId = {}
    // A bfloat16 result of a float kernel stays bfloat16 under bf16Activations (conform would cast it).
    if (this.bf16Activations && dtype === 'float32' && this.addon.dtype(handle) === 'bfloat16') {
      this.owned.add(handle)
      const shape = this.addon.shape(handle)
      this.data.set(dataId, this.live.count({handle, dtype, shape, refCount: 1, bf16: true}, 1))
      return {dataId, shape, dtype}
    }
    const shape = this.conform(handle, dtype)
    this.data.set(dataId, this.live.count({handle, dtype, shape, refCount: 1}, 1))
    return {dataId, shape, dtype}
  }

  /** Bytes of the ATen tensors behind live tfjs tensors (live-bytes.ts). */
  private readonly live = new LiveBytes()

  /** Bytes held by the tensors tfjs has live on this backend, by storage dtype (live-bytes.ts). */
  liveBytes(): Record<string, number> {
    return this.live.bytes()
  }

  /** The highest total of liveBytes since the last call (which starts a new period). */
  takePeakLiveBytes(): number {
    return this.live.takePeak()
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

  /**
   * Keeps `handles` with a tensor until it is disposed (fused kernels' saved state for backward):
   * with its output, or, under `key`, with an input that the gradient keeps anyway (layer norm's
   * statistics with its input x, so that its output need not be kept). A tensor holds one owner's
   * state: when another's is there already, nothing is kept (false; the caller releases `handles`
   * and the backward recomputes them).
   */
  stash(info: tf.TensorInfo, handles: TorchHandle[], key?: object): boolean {
    const rec = this.data.get(info.dataId)
    if (rec.extras) return false
    for (const x of handles) this.untemp(x)
    rec.extras = handles
    rec.extrasKey = key
    return true
  }

  /** What stash kept with `info` under `key`, if anything. */
  stashed(info: tf.TensorInfo, key?: object): TorchHandle[] | undefined {
    const rec = this.data.get(info.dataId)
    return rec?.extrasKey === key ? rec.extras : undefined
  }

  /** One AdamW step over many parameters in one native call (src/tensor/ops.ts adamwUpdate). */
  adamw(
    params: tf.Tensor[], grads: tf.Tensor[], m: tf.Tensor[], v: tf.Tensor[],
    hp: {learningRate: number; beta1: number; beta2: number; epsilon: number; weightDecay: number; step: number},
  ): [(tf.Tensor | null)[], (tf.Tensor | null)[], (tf.Tensor | null)[]] {
    // Outside any kernel: release the float32 copies handleOf makes of bf16-stored parameters here.
    const mark = this.tempMark()
    try {
      const hs = (ts: tf.Tensor[]) => ts.map((t) => this.handleOf(t))
      const [ph, mh, vh] = [hs(params), hs(m), hs(v)]
      // In place (no new memory, as PyTorch's AdamW) where p, m and v each own their data: one tfjs
      // reference, float32 storage handed over as is (not a bf16 copy or a reshaped view). The addon
      // also checks that ATen sees no other holder of the storage, and answers null for those it updated.
      const sole = (t: tf.Tensor, handle: TorchHandle) => {
        const rec = this.data.get(t.dataId)
        return rec !== undefined && rec.refCount === 1 && !rec.bf16 && rec.handle === handle
      }
      const inPlace = params.map((p, i) => sole(p, ph[i]!) && sole(m[i]!, mh[i]!) && sole(v[i]!, vh[i]!))
      const [p2, m2, v2] = this.addon.adamw(ph, hs(grads), mh, vh, hp.learningRate, hp.beta1, hp.beta2, hp.epsilon, hp.weightDecay, hp.step, inPlace)
      const wrap = (hs2: (TorchHandle | null)[]) => hs2.map((x) => (x ? this.makeTensor(x, 'float32') : null))
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
    if (rec.handle) {
      this.live.count(rec, -1)
      this.addon.release(rec.handle)
    }
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
