/**
 * Data-parallel runs configure batch sizes per process (the paper: IR 64, STS 32 per GPU); the
 * sampler plans global batches of size per-process × world size, which train/distributed.ts's
 * ShardedSampler cuts back into one shard per rank.
 */

/**
 * Sampler options with per-device batch sizes turned into global ones (× world size): `batchSize`
 * (single, mixed) and every entry of `batchSizes` (dynamic). Other samplers' options pass unchanged.
 */
export function globalBatchOptions(options: Record<string, unknown>, worldSize: number): Record<string, unknown> {
  if (worldSize === 1) return options
  const out = {...options}
  if (typeof out.batchSize === 'number') out.batchSize = out.batchSize * worldSize
  if (out.batchSizes && typeof out.batchSizes === 'object')
    out.batchSizes = Object.fromEntries(Object.entries(out.batchSizes as Record<string, number>).map(([k, v]) => [k, typeof v === 'number' ? v * worldSize : v]))
  return out
}
