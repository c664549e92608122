import type {BackendProbe, TensorBackendPlugin} from '../../tensor/backend.js'

/** The pure-JavaScript tfjs backend: works everywhere, slowest. */
const cpu: TensorBackendPlugin = {
  async probe(): Promise<BackendProbe> {
    try {
      await import('@tensorflow/tfjs-backend-cpu')
      return {name: 'cpu', available: true, reason: 'pure-JS @tensorflow/tfjs-backend-cpu (always available, slow)'}
    } catch (error) {
      return {name: 'cpu', available: false, reason: `@tensorflow/tfjs-backend-cpu failed to load: ${(error as Error).message}`}
    }
  },
  async init(): Promise<string> {
    await import('@tensorflow/tfjs-backend-cpu')
    return 'cpu'
  },
}
export default cpu
