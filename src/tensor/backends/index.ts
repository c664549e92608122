import type {RegistryEntry} from '../../registry/types.js'

/** Built-in tensor backends. `auto` prefers tensorflow, then torch, then cpu. */
export const entries: RegistryEntry[] = [
  {
    kind: 'backend',
    name: 'cpu',
    description: 'Pure-JavaScript TensorFlow.js kernels (@tensorflow/tfjs-backend-cpu): runs everywhere, slow',
    load: async () => (await import('./cpu.js')).default,
  },
  {
    kind: 'backend',
    name: 'tensorflow',
    description: 'libtensorflow through @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, where they install',
    load: async () => (await import('./tensorflow.js')).default,
  },
  {
    kind: 'backend',
    name: 'torch',
    description: 'libtorch (ATen) through codiemb’s Node-API addon, on CPU or CUDA (npm run build:torch)',
    load: async () => (await import('./torch.js')).default,
  },
]
