import {existsSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

/** An at::Tensor owned by the addon (a Node-API external; freed by `release` or by the GC). */
export type TorchHandle = {readonly __torchHandle: unique symbol}

/** A bound ATen operator: converts its JS arguments by the operator's schema. */
export type TorchOp = (...args: unknown[]) => any

export type TorchDtype = 'float32' | 'int32' | 'bool' | 'int64' | 'float64' | 'float16' | 'bfloat16' | 'uint8'

export interface TorchInfo {
  version: string
  cudaAvailable: boolean
  cudaDeviceCount: number
  cudaDeviceNames: string[]
  /** Each CUDA device's total memory in bytes (-1: unreadable). Absent from addons built before it was added (rebuild: npm run build:torch). */
  cudaDeviceTotalMemory?: number[]
  builtWithCuda: boolean
  numThreads: number
  parallelInfo: string
  cxx11Abi: boolean
  /** ATen's fused attention kernels this addon was compiled with (none before libtorch 2.6). */
  attentionKernels: string[]
}

/** The attention kernels the addon can be asked for; `auto` picks per call (native/src/attention.cc). */
export type AttentionKernel = 'auto' | 'chunked' | 'chunked-composite' | 'flash-cpu' | 'flash' | 'efficient' | 'cudnn'

export interface AttentionNativeOptions {
  scale: number
  dropout: number
  /** Seed of the dropout masks (a 32-bit unsigned integer). */
  seed: number
  /** Query rows per block of the chunked path. */
  blockRows: number
  /** Matrix products in bfloat16 with float32 results. */
  bf16: boolean
  kernel: AttentionKernel
}

/** The functions native/src/addon.cc exports. */
export interface TorchAddon {
  fromArray(values: ArrayBufferView, shape: number[], dtype: TorchDtype, device?: string): TorchHandle
  toArray(h: TorchHandle): Float32Array | Int32Array | Uint8Array | BigInt64Array | Float64Array
  scalar(value: number, dtype: TorchDtype, device?: string): TorchHandle
  release(h: TorchHandle): void
  shape(h: TorchHandle): number[]
  dtype(h: TorchHandle): TorchDtype
  device(h: TorchHandle): string
  /** Casts in place to `dtype` when it differs and returns the shape. */
  conform(h: TorchHandle, dtype: TorchDtype): number[]
  /**
   * conform with the dtype as a code (its index in float32, int32, bool, int64, float64, float16,
   * bfloat16, uint8) and the shape written into `dims`; returns the rank, and marks the handle owned
   * (own). Cheaper per call (the backend's output() makes one per kernel output). Absent from addons
   * built before it.
   */
  conformTo?(h: TorchHandle, dtypeCode: number, dims: Float64Array): number
  /** Marks a handle as a tfjs data id's (conformTo does too); `owned` says whether it is. Absent from addons built before them. */
  own?(h: TorchHandle): void
  owned?(h: TorchHandle): boolean
  op(name: string, overload?: string): TorchOp
  schema(name: string, overload?: string): string
  adamw(
    params: TorchHandle[], grads: TorchHandle[], m: TorchHandle[], v: TorchHandle[],
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number, inPlace?: boolean[],
  ): [(TorchHandle | null)[], (TorchHandle | null)[], (TorchHandle | null)[]]
  /**
   * softmax(q k^T * scale + bias) v with dropout; returns the output, what backward needs (empty
   * unless `save`: the per-row log-sum-exp and the fused kernels' RNG state, never probabilities) and
   * the path taken (chunked, flash-cpu, flash, efficient, cudnn).
   */
  attention(q: TorchHandle, k: TorchHandle, v: TorchHandle, bias: TorchHandle | null, options: AttentionNativeOptions, save: boolean): [TorchHandle, TorchHandle[], string]
  /** [dq, dk, dv] when wantQkv, then [dbias] when wantBias, recomputing the probabilities block by block. */
  attentionBackward(
    dy: TorchHandle, q: TorchHandle, k: TorchHandle, v: TorchHandle, bias: TorchHandle | null, out: TorchHandle,
    saved: TorchHandle[], options: AttentionNativeOptions, wantQkv: boolean, wantBias: boolean,
  ): TorchHandle[]
  /** Query vectors [nq × dim] (a copy, L2-normalised when `cosine`) on `device` for searchChunk (native/src/search.cc). */
  searchQueries(values: Float32Array, nq: number, dim: number, cosine: boolean, device?: string): TorchHandle
  /**
   * One corpus chunk ([n × dim], read in place) scored against every query batch and merged into
   * `running` (the previous call's result, or []): per batch its top `keep` scores (float32) and
   * global document indices (int32), interleaved. The caller releases the previous handles.
   * `workspace`: a float32 [rows >= n, dim] tensor on the device for the chunk's normalised copy.
   */
  searchChunk(
    queries: TorchHandle, chunk: Float32Array, n: number, dim: number, offset: number, keep: number, queryBatch: number, cosine: boolean,
    running: TorchHandle[], workspace?: TorchHandle,
  ): TorchHandle[]
  info(): TorchInfo
  setNumThreads(n: number): void
  manualSeed(seed: number): void
  /**
   * Inverted dropout of a float32 CPU tensor with a counter-based mask drawn in parallel (the chunked
   * attention's masks): [y, keep (bool)]; without a seed, one is drawn from the default CPU generator.
   * Absent from addons built before it (the kernel then uses aten::native_dropout).
   */
  dropout?(x: TorchHandle, rate: number, seed: number | null | undefined): [TorchHandle, TorchHandle]
  setAllowTF32(on: boolean): void
  synchronize(deviceIndex?: number): void
  /** The CUDA caching allocator's bytes on one GPU, now and at their peak since the last reset (what
   *  torch.cuda.max_memory_allocated / max_memory_reserved report); null in a build without CUDA. */
  cudaMemoryStats(deviceIndex?: number): {allocated: number; reserved: number; peakAllocated: number; peakReserved: number} | null
  /** Resets those peaks; false in a build without CUDA. */
  cudaResetPeakMemoryStats(deviceIndex?: number): boolean
  /** Returns the allocator's unused cached blocks to the driver (torch.cuda.empty_cache); false without CUDA. */
  cudaEmptyCache(): boolean
  /** Tensor handles not yet released or finalized (leak checks). */
  liveTensors(): number
  /** Bytes the live handles reported to V8 as external memory (host storage, once per storage). */
  reportedBytes(): number
  /** Whether the addon was built with c10d (and why not), and the process group's state and traffic counters. */
  distInfo(): DistInfo
  /** Joins the process group (rank 0 serves the TCPStore at masterAddr:masterPort); blocks until every rank joined or timeoutMs. */
  distInit(options: DistInitOptions): void
  /** Sum or mean over the ranks, in buckets of about bucketBytes (one collective each); new handles in the inputs' shapes. */
  distAllReduce(handles: TorchHandle[], op: 'sum' | 'avg', bucketBytes: number, async: false): TorchHandle[]
  distAllReduce(handles: TorchHandle[], op: 'sum' | 'avg', bucketBytes: number, async: true): Promise<TorchHandle[]>
  /** Rank `root`'s values on every rank (new handles). */
  distBroadcast(handles: TorchHandle[], root: number, bucketBytes: number, async: false): TorchHandle[]
  distBroadcast(handles: TorchHandle[], root: number, bucketBytes: number, async: true): Promise<TorchHandle[]>
  /** Every rank's tensor, in rank order (their first dimensions may differ). */
  distAllGather(handle: TorchHandle, async: false): TorchHandle[]
  distAllGather(handle: TorchHandle, async: true): Promise<TorchHandle[]>
  distBarrier(async: false): void
  distBarrier(async: true): Promise<TorchHandle[]>
  /** Leaves the process group (closes the connections; rank 0 stops serving the store). */
  distDestroy(): void
}

export interface DistInitOptions {
  rank: number
  worldSize: number
  masterAddr: string
  masterPort: number
  /** Rendezvous and per-collective timeout. */
  timeoutMs: number
  /** Network interface for Gloo (GLOO_SOCKET_IFNAME); default: loopback when masterAddr is, else this host's address. */
  interface?: string
  /** The process group: nccl (CUDA tensors, builds with NCCL) or gloo; default nccl on a CUDA device where built, else gloo. */
  backend?: 'nccl' | 'gloo'
  /** Where this rank's tensors live: cpu, cuda:N, or cuda (= cuda:localRank); made current before an NCCL group is created. */
  device?: string
  localRank?: number
  hostname?: string
}

export interface DistInfo {
  available: boolean
  /** Why not, when unavailable. */
  reason?: string
  backends: string[]
  initialized: boolean
  rank?: number
  worldSize?: number
  backend?: string
  /** The device the group's collectives run on (cpu, cuda:N). */
  device?: string
  /** Why this build has no NCCL process groups (absent when it has them). */
  ncclReason?: string
  /** Why this build has no Gloo process groups (PyTorch's wheels ship no Gloo headers; absent when it has them). */
  glooReason?: string
  timeoutMs?: number
  collectives?: number
  bytesReduced?: number
  bytesBroadcast?: number
  bytesGathered?: number
  /** The first collective failure (the group refuses further collectives). */
  failed?: string
}

/** Where `npm run build:torch` puts the addon: native/build/Release/codiemb_torch.node under the package root. */
export function torchAddonPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir)
  return process.env.CODIEMB_TORCH_ADDON || join(dir, 'native', 'build', 'Release', 'codiemb_torch.node')
}

let loaded: TorchAddon | undefined
/** Loads the addon once; throws with the path and the loader's reason when it cannot. */
export function loadTorchAddon(): TorchAddon {
  if (loaded) return loaded
  const path = torchAddonPath()
  if (!existsSync(path)) {
    throw new Error(`the torch addon is not built (${path} missing): install libtorch (apt-get install libtorch-dev libopenblas0-pthread, or PyTorch) and run npm run build:torch`)
  }
  const require = createRequire(import.meta.url)
  try {
    loaded = require(path) as TorchAddon
  } catch (error) {
    throw new Error(`the torch addon at ${path} failed to load (libtorch moved or ABI mismatch? rerun npm run build:torch): ${(error as Error).message}`)
  }
  return loaded
}
