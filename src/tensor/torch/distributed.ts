/**
 * The torch backend's collectives (src/tensor/collectives.ts): tfjs tensors in and out, PyTorch
 * c10d underneath (native/src/distributed.cc). Gradients and parameters go in buckets of
 * BUCKET_BYTES, one c10d all-reduce each, run off the JS thread so signals and progress output
 * still get through while the ranks exchange.
 */
import * as tf from '@tensorflow/tfjs-core'
import {CodiembError, ExecutionError} from '../../core/errors.js'
import type {DistributedEnv} from '../../core/distributed-env.js'
import type {CollectiveStats, Collectives} from '../collectives.js'
import {loadTorchAddon, type DistInfo, type TorchAddon, type TorchHandle} from './addon.js'
import type {TorchBackend} from './backend.js'

/** DDP's default bucket size: large enough to amortise a collective's latency, small enough to pipeline. */
export const BUCKET_BYTES = 25 * 1024 * 1024

/** Whether this build of the addon can run collectives, and why not. */
export function torchDistributedInfo(addon: TorchAddon = loadTorchAddon()): DistInfo {
  if (typeof addon.distInfo !== 'function')
    return {available: false, reason: 'this torch addon predates distributed support (rebuild it: npm run build:torch)', backends: [], initialized: false}
  return addon.distInfo()
}

export class TorchProcessGroup implements Collectives {
  /** The tail of the queue of asynchronous collectives (they must start in call order on every rank). */
  private tail: Promise<unknown> = Promise.resolve()
  private pending = 0
  private closed = false

  private constructor(
    private readonly addon: TorchAddon,
    readonly rank: number,
    readonly worldSize: number,
    readonly localRank: number,
  ) {}

  static join(env: DistributedEnv): TorchProcessGroup {
    const addon = loadTorchAddon()
    const info = torchDistributedInfo(addon)
    if (!info.available) throw new CodiembError(`a distributed run (WORLD_SIZE=${env.worldSize}): ${info.reason}`)
    // The active torch backend's device decides the default process group (NCCL for CUDA tensors).
    const device = tf.getBackend() === 'torch' ? (tf.backend() as TorchBackend).device : 'cpu'
    if (env.backend === 'nccl' && !info.backends.includes('nccl'))
      throw new CodiembError(`CODIEMB_DIST_BACKEND=nccl: ${info.ncclReason ?? 'this torch addon has no NCCL process groups'}`)
    if (env.backend === 'gloo' && !info.backends.includes('gloo'))
      throw new CodiembError(`CODIEMB_DIST_BACKEND=gloo: ${info.glooReason ?? 'this torch addon has no Gloo process groups'}`)
    if (env.backend === 'nccl' && !device.startsWith('cuda'))
      throw new CodiembError(`CODIEMB_DIST_BACKEND=nccl needs CUDA tensors (--device cuda); this rank's device is ${device}: use gloo on the CPU`)
    try {
      addon.distInit({
        rank: env.rank,
        worldSize: env.worldSize,
        masterAddr: env.masterAddr,
        masterPort: env.masterPort,
        timeoutMs: env.timeoutMs,
        device,
        localRank: env.localRank,
        ...(env.interface ? {interface: env.interface} : {}),
        ...(env.backend ? {backend: env.backend} : {}),
      })
    } catch (error) {
      throw new ExecutionError(
        `joining the process group at ${env.masterAddr}:${env.masterPort} as rank ${env.rank} of ${env.worldSize} failed within ${env.timeoutMs / 1000} s ` +
          `(are all ${env.worldSize} ranks started, and MASTER_ADDR/MASTER_PORT the same for all?): ${(error as Error).message}`,
        {cause: error},
      )
    }
    return new TorchProcessGroup(addon, env.rank, env.worldSize, env.localRank)
  }

  private backend(): TorchBackend {
    if (tf.getBackend() !== 'torch') throw new Error(`collectives need the torch backend active (active: ${tf.getBackend()})`)
    return tf.backend() as TorchBackend
  }

  private handles(tensors: tf.Tensor[]): TorchHandle[] {
    const b = this.backend()
    return tensors.map((t) => b.handleOf({dataId: t.dataId, shape: t.shape, dtype: t.dtype}))
  }

  private wrap(handles: TorchHandle[], like: tf.Tensor[]): tf.Tensor[] {
    const b = this.backend()
    return handles.map((h, i) => b.makeTensor(h, like[Math.min(i, like.length - 1)]!.dtype))
  }

  /** Starts `run` after every earlier asynchronous collective; failures become ExecutionErrors. */
  private enqueue<T>(run: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the process group is closed'))
    this.pending++
    const next = this.tail.then(run, run).finally(() => this.pending--)
    this.tail = next.catch(() => undefined)
    return next.catch((error: Error) => {
      throw new ExecutionError(error.message, {cause: error})
    })
  }

  allReduce(tensors: tf.Tensor[], op: 'sum' | 'avg'): Promise<tf.Tensor[]> {
    if (tensors.length === 0) return Promise.resolve([])
    const handles = this.handles(tensors)
    return this.enqueue(async () => this.wrap(await this.addon.distAllReduce(handles, op, BUCKET_BYTES, true), tensors))
  }

  broadcast(tensors: tf.Tensor[], root = 0): Promise<tf.Tensor[]> {
    if (tensors.length === 0) return Promise.resolve([])
    const handles = this.handles(tensors)
    return this.enqueue(async () => this.wrap(await this.addon.distBroadcast(handles, root, BUCKET_BYTES, true), tensors))
  }

  allGatherSync(t: tf.Tensor): tf.Tensor[] {
    if (this.pending > 0) throw new Error('all_gather: an asynchronous collective is still in flight (collectives must run in the same order on every rank)')
    const [handle] = this.handles([t])
    try {
      return this.wrap(this.addon.distAllGather(handle!, false), [t])
    } catch (error) {
      throw new ExecutionError((error as Error).message, {cause: error})
    }
  }

  async barrier(): Promise<void> {
    await this.enqueue(() => this.addon.distBarrier(true))
  }

  stats(): CollectiveStats {
    const info = this.addon.distInfo()
    return {collectives: info.collectives ?? 0, bytesReduced: info.bytesReduced ?? 0, bytesBroadcast: info.bytesBroadcast ?? 0, bytesGathered: info.bytesGathered ?? 0}
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.addon.distDestroy()
  }
}
