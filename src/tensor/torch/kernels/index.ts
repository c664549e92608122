/**
 * The tfjs kernels of the `torch` backend, registered at import. tfjs's own gradients (registered
 * by kernel name, backend-independent) run on these kernels too, so the set covers what the
 * encoders, losses and optimizers use plus what their gradients call. A kernel that is not here
 * fails in tfjs with "Kernel 'Name' not registered for backend 'torch'". codiemb's fused kernels
 * register separately (../fused.ts).
 */
import './elementwise.js'
import './matmul.js'
import './reductions.js'
import './shapes.js'
import './indexing.js'
import './creation.js'

export {TORCH_BACKEND_NAME, registerTorchKernel, torchKernelNames} from './registry.js'
