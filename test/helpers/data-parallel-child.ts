/**
 * One rank of test/train/distributed.test.ts (or, with WORLD_SIZE unset, the single-process
 * reference): trains the toy encoder on the equivalence fixture (distributed-fixture.ts) and prints
 * its final weights, losses and, for the gradient check, the averaged gradients of one batch.
 *   argv[2]: `train` (k steps, data parallel) | `grads` (one IR batch's loss and averaged gradients, cross-device
 *   negatives) | `grads-cache` (the same through GradCache, chunks of 3 texts)
 */
import * as tf from '@tensorflow/tfjs-core'
import {distributedEnv} from '../../src/core/distributed-env.js'
import {joinProcessGroup} from '../../src/tensor/process-group.js'
import {DataParallel} from '../../src/train/distributed.js'
import {useTestBackend} from './env.js'
import {crossDeviceGradients, dataParallelTrainer} from './distributed-fixture.js'

const mode = process.argv[2] ?? 'train'
const backend = await useTestBackend()
const dp = new DataParallel(await joinProcessGroup(distributedEnv()!, backend))
try {
  if (mode === 'train') {
    const liveAfterStep: number[] = []
    const {trainer, encoder} = dataParallelTrainer({distributed: dp, onEvent: (e) => e.type === 'step' && liveAfterStep.push(tf.memory().numTensors)})
    const summary = await trainer.run()
    const weights: Record<string, number[]> = {}
    for (const [name, v] of encoder.variables) weights[name] = Array.from(v.dataSync())
    console.log(JSON.stringify({rank: dp.rank, steps: summary.steps, history: summary.history, examples: summary.examples, liveAfterStep, weights, numTensors: tf.memory().numTensors}))
  } else {
    console.log(JSON.stringify({rank: dp.rank, ...(await crossDeviceGradients(dp, mode === 'grads-cache' ? 3 : undefined))}))
  }
} finally {
  dp.close()
}
