import assert from 'node:assert/strict'
import {test} from 'node:test'
import {describeRanks, distributedAvailable, runRanks} from '../helpers/dist.js'
import {distributedEnv} from '../../src/core/distributed-env.js'
import {CodiembError} from '../../src/core/errors.js'

test('two ranks all-reduce (sum, avg), broadcast, all-gather rows of unequal counts and meet at a barrier', async (t) => {
  if (!(await distributedAvailable(t))) return
  const ranks = await runRanks('collectives-child.js', 2, {args: ['basic']})
  assert.ok(ranks.every((r) => r.code === 0), describeRanks(ranks))
  for (const {result} of ranks) {
    // CPU tensors: Gloo, whether or not the addon has NCCL (the default picks NCCL for CUDA tensors only).
    assert.equal(result.backend, 'gloo')
    assert.equal(result.device, 'cpu')
    assert.deepEqual(result.sum, [[3, 6, 6, 8], [10]])
    assert.deepEqual(result.sumShape, [2, 2])
    assert.deepEqual(result.avg, [1.5, 3, 3, 4])
    assert.deepEqual(result.broadcast, [101, 201])
    assert.deepEqual(result.gathered, [
      {shape: [1, 3], values: [0.5, 0.5, 0.5]},
      {shape: [2, 3], values: [1.5, 1.5, 1.5, 1.5, 1.5, 1.5]},
    ])
    assert.equal(result.stats.bytesReduced, (4 + 1 + 4) * 4)
  }
})

test('a rank that dies makes the others fail with an error naming the collective and their rank', async (t) => {
  if (!(await distributedAvailable(t))) return
  const ranks = await runRanks('collectives-child.js', 2, {args: ['die'], env: () => ({CODIEMB_DIST_TIMEOUT: '20'})})
  assert.equal(ranks[1]!.code, 7, describeRanks(ranks))
  assert.equal(ranks[0]!.code, 1, describeRanks(ranks))
  assert.match(ranks[0]!.result.error, /broadcast\(from rank 1.*on rank 0 of 2 \(gloo\) failed/)
  assert.equal(ranks[0]!.result.errorClass, 'ExecutionError')
  assert.ok(ranks[0]!.seconds < 20, `rank 0 took ${ranks[0]!.seconds} s to notice`)
})

test('a rank that hangs makes the others fail within the timeout (CODIEMB_DIST_TIMEOUT)', async (t) => {
  if (!(await distributedAvailable(t))) return
  const ranks = await runRanks('collectives-child.js', 2, {args: ['hang'], env: () => ({CODIEMB_DIST_TIMEOUT: '3'}), limitMs: 40_000})
  assert.equal(ranks[0]!.code, 1, describeRanks(ranks))
  assert.match(ranks[0]!.result.error, /broadcast\(from rank 1.*on rank 0 of 2 \(gloo\) failed/)
  assert.ok(ranks[0]!.seconds < 30, `rank 0 took ${ranks[0]!.seconds} s`)
})

test('torchrun variables are read, defaulted and checked', () => {
  assert.equal(distributedEnv({}), undefined)
  assert.deepEqual(distributedEnv({WORLD_SIZE: '4', RANK: '3', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: 'node1', MASTER_PORT: '29400'}), {
    rank: 3, worldSize: 4, localRank: 1, localWorldSize: 2, masterAddr: 'node1', masterPort: 29400, timeoutMs: 300_000,
  })
  assert.throws(() => distributedEnv({WORLD_SIZE: '2', RANK: '2', MASTER_ADDR: 'x', MASTER_PORT: '1'}), (e: Error) => e instanceof CodiembError && /RANK=2: expected 0\.\.1/.test(e.message))
  assert.throws(() => distributedEnv({WORLD_SIZE: '2', RANK: '0', MASTER_PORT: '1'}), /MASTER_ADDR is not set/)
  assert.throws(() => distributedEnv({WORLD_SIZE: '2', RANK: '0', MASTER_ADDR: 'x', MASTER_PORT: 'abc'}), /MASTER_PORT="abc": expected an integer/)
  assert.throws(() => distributedEnv({WORLD_SIZE: '2', RANK: '0', MASTER_ADDR: 'x', MASTER_PORT: '1', CODIEMB_DIST_TIMEOUT: '0'}), /CODIEMB_DIST_TIMEOUT/)
  assert.equal(distributedEnv({WORLD_SIZE: '1', RANK: '0', CODIEMB_DIST_BACKEND: 'NCCL'})!.backend, 'nccl')
  assert.equal(distributedEnv({WORLD_SIZE: '1', RANK: '0'})!.backend, undefined)
  assert.throws(() => distributedEnv({WORLD_SIZE: '1', RANK: '0', CODIEMB_DIST_BACKEND: 'mpi'}), (e: Error) => e instanceof CodiembError && /CODIEMB_DIST_BACKEND="mpi": expected nccl or gloo/.test(e.message))
})

test('distInit checks its backend and device before any rendezvous', async (t) => {
  if (!(await distributedAvailable(t))) return
  const {loadTorchAddon} = await import('../../src/tensor/torch/addon.js')
  const addon = loadTorchAddon()
  const base = {rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: 1, timeoutMs: 1000}
  assert.throws(() => addon.distInit({...base, backend: 'mpi' as 'gloo'}), /distInit: backend "mpi" \(expected nccl or gloo\)/)
  assert.throws(() => addon.distInit({...base, device: 'tpu:0'}), /distInit: device "tpu:0" \(expected cpu, cuda or cuda:N\)/)
  assert.throws(() => addon.distInit({...base, backend: 'nccl', device: 'cpu'}), /distInit: backend nccl: this torch addon was built without NCCL|backend nccl needs CUDA tensors/)
  assert.equal(addon.distInfo().initialized, false)
})

test('CODIEMB_DIST_BACKEND=nccl is refused, saying why, where NCCL cannot run (no NCCL in this build, or CPU tensors)', async (t) => {
  if (!(await distributedAvailable(t))) return
  const {torchDistributedInfo} = await import('../../src/tensor/torch/distributed.js')
  const info = torchDistributedInfo()
  assert.equal(info.backends[0], 'gloo')
  // The test ranks compute on the CPU: NCCL is refused either way, before any rendezvous.
  const ranks = await runRanks('collectives-child.js', 1, {args: ['basic'], env: () => ({CODIEMB_DIST_BACKEND: 'nccl'}), limitMs: 60_000})
  // The child lets the CodiembError escape (an uncaught error: exit 1); the CLI maps it to exit 2.
  assert.equal(ranks[0]!.code, 1, describeRanks(ranks))
  if (info.backends.includes('nccl')) assert.match(ranks[0]!.stderr + ranks[0]!.stdout, /CODIEMB_DIST_BACKEND=nccl needs CUDA tensors/)
  else assert.match(ranks[0]!.stderr + ranks[0]!.stdout, /CODIEMB_DIST_BACKEND=nccl: this torch addon was built without NCCL/)
})
