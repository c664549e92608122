import {createRequire} from 'node:module'
import {hostMemory, type BackendProbe, type TensorBackendPlugin} from '../backend.js'

const require = createRequire(import.meta.url)
const PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']

/**
 * TensorFlow's C library through @tensorflow/tfjs-node(-gpu), where those packages install
 * (they download libtensorflow at install time and need CUDA 11.2 for the GPU build).
 */
const tensorflow: TensorBackendPlugin = {
  async probe(): Promise<BackendProbe> {
    const reasons: string[] = []
    for (const pkg of PACKAGES) {
      try {
        require.resolve(pkg)
      } catch {
        reasons.push(`${pkg} not installed`)
        continue
      }
      try {
        require(pkg)
        return {name: 'tensorflow', available: true, reason: `${pkg} loaded`, detail: {package: pkg}}
      } catch (error) {
        reasons.push(`${pkg} installed but failed to initialise: ${(error as Error).message.split('\n')[0]}`)
      }
    }
    return {name: 'tensorflow', available: false, reason: reasons.join('; ')}
  },
  async init(): Promise<string> {
    for (const pkg of PACKAGES) {
      try {
        require(pkg)
        return 'tensorflow'
      } catch {
        /* try the next */
      }
    }
    throw new Error(`neither ${PACKAGES.join(' nor ')} can be loaded`)
  },
  // Host memory; the GPU build's device memory is not reported by tfjs-node.
  deviceMemory: () => hostMemory(false),
}
export default tensorflow
