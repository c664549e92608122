/**
 * One rank of test/tensor/collectives.test.ts: joins the process group from torchrun's variables and
 * runs the collective named by argv[2]; prints its results as one JSON line.
 *   basic: all-reduce sum and avg (two buckets), broadcast from rank 1, all-gather of unequal rows, barrier
 *   die:   rank 1 exits before the second all-reduce; the others must fail naming the collective
 *   hang:  rank 1 sleeps past the timeout instead; the others must fail within it
 */
import * as tf from '@tensorflow/tfjs-core'
import {distributedEnv} from '../../src/core/distributed-env.js'
import {joinProcessGroup} from '../../src/tensor/process-group.js'
import {torchDistributedInfo} from '../../src/tensor/torch/distributed.js'
import {useTestBackend} from './env.js'

const mode = process.argv[2] ?? 'basic'
const backend = await useTestBackend()
const group = await joinProcessGroup(distributedEnv()!, backend)
const r = group.rank
const info = torchDistributedInfo()
const out: Record<string, unknown> = {rank: r, worldSize: group.worldSize, backend: info.backend, device: info.device}
try {
  const a = tf.tensor2d([[r + 1, 2 * (r + 1)], [3, 4]])
  const b = tf.tensor1d([r * 10])
  const [sum, sumB] = await group.allReduce([a, b], 'sum')
  const [avg] = await group.allReduce([a], 'avg')
  out.sum = [Array.from(sum!.dataSync()), Array.from(sumB!.dataSync())]
  out.sumShape = sum!.shape
  out.avg = Array.from(avg!.dataSync())
  if (mode === 'die' && r === 1) process.exit(7)
  if (mode === 'hang' && r === 1) await new Promise((resolve) => setTimeout(resolve, 8_000))
  const [fromOne] = await group.broadcast([tf.tensor1d([r + 100, r + 200])], 1)
  out.broadcast = Array.from(fromOne!.dataSync())
  const gathered = group.allGatherSync(tf.fill([r + 1, 3], r + 0.5))
  out.gathered = gathered.map((g) => ({shape: g.shape, values: Array.from(g.dataSync())}))
  await group.barrier()
  out.stats = group.stats()
  out.numTensors = tf.memory().numTensors
  console.log(JSON.stringify(out))
  group.close()
} catch (error) {
  console.log(JSON.stringify({...out, error: (error as Error).message, errorClass: (error as Error).constructor.name}))
  process.exit(1)
}
