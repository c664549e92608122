/**
 * A command joining a data-parallel job as one rank (torchrun's variables: core/distributed-env.ts),
 * whether `--nproc-per-node` (cli/launch.ts), torchrun, SLURM or a PyTorchJob started it: `train`
 * (data-parallel training) and the encoding commands `embed`, `eval`, `mine` (slices of the texts
 * encoded in parallel, tensor/shards.ts).
 */
import {Flags} from '@oclif/core'
import {availableParallelism} from 'node:os'
import type {DistributedEnv} from '../core/distributed-env.js'
import type {ShardGroup} from '../tensor/shards.js'
import type {DataParallel} from '../train/distributed.js'

/** --nproc-per-node and --dist-timeout; `what` starts the first one's summary ("Train data-parallel"). */
export function distributedFlags(what: string) {
  return {
    'nproc-per-node': Flags.integer({
      summary: `${what} with this many local processes (ranks; like torchrun --nproc-per-node).`,
      helpValue: 'N',
      min: 1,
      helpGroup: 'DISTRIBUTED',
    }),
    'dist-timeout': Flags.integer({
      summary: 'Seconds a rank waits for the others before failing, naming the collective (default 300).',
      helpValue: 'SECONDS',
      min: 1,
      helpGroup: 'DISTRIBUTED',
    }),
  }
}

export type RankStart = {launched: true; result: unknown} | {launched: false; env?: DistributedEnv}

/**
 * How a command starts: with --nproc-per-node N > 1 outside a job, it launches N local ranks of
 * itself (cli/launch.ts) and is done when they are (`launched`, rank 0's --json result); otherwise it
 * runs here, as one rank of a job when torchrun's variables say so (`env`), else alone.
 * --dist-timeout sets CODIEMB_DIST_TIMEOUT for this process and its ranks.
 */
export async function startRanks(
  command: string,
  argv: string[],
  flags: {'nproc-per-node'?: number; 'dist-timeout'?: number},
  o: {json: boolean; signal: () => AbortSignal; graceSeconds?: number; noLaunch?: boolean},
): Promise<RankStart> {
  const {distributedEnv, DEFAULT_DIST_TIMEOUT_SECONDS} = await import('../core/distributed-env.js')
  if (flags['dist-timeout'] !== undefined) process.env.CODIEMB_DIST_TIMEOUT = String(flags['dist-timeout'])
  const env = distributedEnv()
  const nproc = flags['nproc-per-node']
  if (nproc === undefined || nproc <= 1 || env || o.noLaunch) return {launched: false, env}
  const {launchLocalRanks} = await import('./launch.js')
  const launched = await launchLocalRanks({
    nproc,
    argv: [command, ...stripFlag(argv, '--nproc-per-node')],
    json: o.json,
    timeoutSeconds: flags['dist-timeout'] ?? (Number(process.env.CODIEMB_DIST_TIMEOUT) || DEFAULT_DIST_TIMEOUT_SECONDS),
    ...(o.graceSeconds !== undefined ? {graceSeconds: o.graceSeconds} : {}),
    signal: o.signal(),
  })
  return {launched: true, result: launched.envelope?.result}
}

/** argv without `flag` and its value (`--flag N` or `--flag=N`). */
export function stripFlag(argv: string[], flag: string): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === flag) i++
    else if (!argv[i]!.startsWith(`${flag}=`)) out.push(argv[i]!)
  }
  return out
}

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

/** Joins the job's process group for encoding in parallel; `close` leaves it. */
export async function joinShardGroup(env: DistributedEnv, backendName: string): Promise<ShardGroup & {close(): void}> {
  const [{joinProcessGroup}, {shardGroup}] = await Promise.all([import('../tensor/process-group.js'), import('../tensor/shards.js')])
  const collectives = await joinProcessGroup(env, backendName)
  return {...shardGroup(collectives), close: () => collectives.close()}
}
