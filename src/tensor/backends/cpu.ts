import {hostMemory, type BackendInitOptions, type BackendProbe, type TensorBackendPlugin} from '../backend.js'

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
  async init(options: BackendInitOptions = {}): Promise<string> {
    // Silently computing in float32 when bf16 was asked for would make timings and results lie.
    if (options.precision && options.precision !== 'fp32') {
      throw new Error(`the cpu backend computes in float32 only; --precision ${options.precision} needs the torch backend`)
    }
    await import('@tensorflow/tfjs-backend-cpu')
    return 'cpu'
  },
  deviceMemory: () => hostMemory(false),
}
export default cpu
