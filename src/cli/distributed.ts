/**
 * A command joining a data-parallel job as one rank (torchrun's variables: core/distributed-env.ts),
 * whether `--nproc-per-node` (cli/launch.ts), torchrun, SLURM or a PyTorchJob started it.
 */
import type {DistributedEnv} from '../core/distributed-env.js'
import {availableParallelism} from 'node:os'
import type {DataParallel} from '../train/distributed.js'

/**
 * What a rank changes before its backend starts: the torch backend (the only one with
 * collectives) when the backend is `auto`; its device (`cuda` → `cuda:LOCAL_RANK`: one GPU per
 * local rank); its share of the CPU threads (CODIEMB_TORCH_THREADS = cores / LOCAL_WORLD_SIZE unless set).
 */
export function rankSettings(env: DistributedEnv, flags: {backend?: string; device?: string}): {backend: string; device?: string} {
  if (!process.env.CODIEMB_TORCH_THREADS) process.env.CODIEMB_TORCH_THREADS = String(Math.max(1, Math.floor(availableParallelism() / env.localWorldSize)))
  const device = flags.device?.trim().toLowerCase() === 'cuda' ? `cuda:${env.localRank}` : flags.device
  return {backend: !flags.backend || flags.backend === 'auto' ? 'torch' : flags.backend, ...(device ? {device} : {})}
}

/** Joins the job's process group (rendezvous at MASTER_ADDR:MASTER_PORT) on the active backend. */
export async function joinDataParallel(env: DistributedEnv, backendName: string): Promise<DataParallel> {
  const [{joinProcessGroup}, {DataParallel}] = await Promise.all([import('../tensor/process-group.js'), import('../train/distributed.js')])
  return new DataParallel(await joinProcessGroup(env, backendName))
}
