/**
 * Opens the process group of a data-parallel run (the Collectives of collectives.ts): PyTorch's c10d
 * through the torch addon (native/src/distributed.cc; Gloo on CPU tensors). Other backends (cpu,
 * tensorflow) have no collectives and are refused with a message saying to use the torch backend.
 */
import {CodiembError} from '../core/errors.js'
import type {DistributedEnv} from '../core/distributed-env.js'
import type {Collectives} from './collectives.js'

/** Joins the process group described by `env` on the active tfjs backend `backendName`. */
export async function joinProcessGroup(env: DistributedEnv, backendName: string): Promise<Collectives> {
  if (backendName !== 'torch')
    throw new CodiembError(
      `a distributed run (WORLD_SIZE=${env.worldSize}) needs the torch backend (--backend torch), whose addon runs PyTorch's c10d collectives; the ${backendName} backend has none`,
    )
  const {TorchProcessGroup} = await import('./torch/distributed.js')
  return TorchProcessGroup.join(env)
}
