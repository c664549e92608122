/**
 * torchrun's environment contract, read once: a process started by torchrun, by SLURM through a
 * small wrapper, by a Kubernetes PyTorchJob or by `codiemb train --nproc-per-node N` finds its place
 * in the job in these variables, so every launcher that works for PyTorch works for codiemb:
 *   RANK (0..WORLD_SIZE−1), WORLD_SIZE, LOCAL_RANK (index on this machine: picks cuda:LOCAL_RANK),
 *   LOCAL_WORLD_SIZE (ranks on this machine: shares the CPU threads), MASTER_ADDR, MASTER_PORT
 *   (where rank 0 serves the rendezvous store).
 * codiemb adds CODIEMB_DIST_TIMEOUT (seconds a rendezvous or a collective may wait for the other
 * ranks before this rank fails naming it; default 300) and CODIEMB_DIST_BACKEND (nccl | gloo, what
 * init_process_group's backend argument is in PyTorch; default: nccl for CUDA tensors where the addon
 * has it, else gloo), and honours GLOO_SOCKET_IFNAME like PyTorch.
 */
import {CodiembError} from './errors.js'

export interface DistributedEnv {
  rank: number
  worldSize: number
  localRank: number
  localWorldSize: number
  masterAddr: string
  masterPort: number
  /** How long a rank waits for the others (rendezvous, each collective) before failing. */
  timeoutMs: number
  /** GLOO_SOCKET_IFNAME: the network interface Gloo binds to (multi-node). */
  interface?: string
  /** CODIEMB_DIST_BACKEND: the c10d process group; unset: nccl on CUDA devices (where built), gloo otherwise. */
  backend?: 'nccl' | 'gloo'
}

export const DEFAULT_DIST_TIMEOUT_SECONDS = 300

function integer(env: NodeJS.ProcessEnv, name: string, min: number, fallback?: number): number {
  const raw = env[name]
  if (raw === undefined || raw === '') {
    if (fallback !== undefined) return fallback
    throw new CodiembError(`environment variable ${name} is not set (a distributed run needs RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, as torchrun sets them)`)
  }
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min) throw new CodiembError(`environment variable ${name}=${JSON.stringify(raw)}: expected an integer ≥ ${min}`)
  return value
}

/**
 * The distributed settings of this process, or undefined when WORLD_SIZE is unset (a single-process
 * run). WORLD_SIZE=1 is a valid one-rank group. Bad values are CodiembErrors naming the variable.
 */
export function distributedEnv(env: NodeJS.ProcessEnv = process.env): DistributedEnv | undefined {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE === '') return undefined
  const worldSize = integer(env, 'WORLD_SIZE', 1)
  const rank = integer(env, 'RANK', 0)
  if (rank >= worldSize) throw new CodiembError(`environment variable RANK=${rank}: expected 0..${worldSize - 1} (WORLD_SIZE=${worldSize})`)
  const localWorldSize = integer(env, 'LOCAL_WORLD_SIZE', 1, worldSize)
  const localRank = integer(env, 'LOCAL_RANK', 0, rank % localWorldSize)
  if (localRank >= localWorldSize) throw new CodiembError(`environment variable LOCAL_RANK=${localRank}: expected 0..${localWorldSize - 1} (LOCAL_WORLD_SIZE=${localWorldSize})`)
  const masterAddr = env.MASTER_ADDR?.trim() || (worldSize === 1 ? '127.0.0.1' : undefined)
  if (!masterAddr) throw new CodiembError('environment variable MASTER_ADDR is not set (the host where rank 0 serves the rendezvous store)')
  const masterPort = integer(env, 'MASTER_PORT', 1, worldSize === 1 ? 29500 : undefined)
  if (masterPort > 65535) throw new CodiembError(`environment variable MASTER_PORT=${masterPort}: expected 1..65535`)
  const timeoutSeconds = Number(env.CODIEMB_DIST_TIMEOUT ?? DEFAULT_DIST_TIMEOUT_SECONDS)
  if (!(timeoutSeconds > 0)) throw new CodiembError(`environment variable CODIEMB_DIST_TIMEOUT=${JSON.stringify(env.CODIEMB_DIST_TIMEOUT)}: expected seconds > 0`)
  const iface = env.GLOO_SOCKET_IFNAME?.trim()
  const backend = env.CODIEMB_DIST_BACKEND?.trim().toLowerCase()
  if (backend && backend !== 'nccl' && backend !== 'gloo') throw new CodiembError(`environment variable CODIEMB_DIST_BACKEND=${JSON.stringify(env.CODIEMB_DIST_BACKEND)}: expected nccl or gloo`)
  return {
    rank,
    worldSize,
    localRank,
    localWorldSize,
    masterAddr,
    masterPort,
    timeoutMs: Math.round(timeoutSeconds * 1000),
    ...(iface ? {interface: iface} : {}),
    ...(backend ? {backend: backend as 'nccl' | 'gloo'} : {}),
  }
}
