import {existsSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import type {BackendProbe, TensorBackendPlugin} from '../../tensor/backend.js'

/** Where `npm run build:torch` puts the addon (relative to the package root). */
export function torchAddonPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir)
  return join(dir, 'native', 'build', 'Release', 'codiemb_torch.node')
}

/** libtorch through a Node-API addon. The addon itself arrives with the torch-backend work. */
const torch: TensorBackendPlugin = {
  async probe(): Promise<BackendProbe> {
    const addon = torchAddonPath()
    if (!existsSync(addon)) {
      return {
        name: 'torch',
        available: false,
        reason: `addon not built (${addon} missing): install libtorch (apt-get install libtorch-dev libopenblas0-pthread, or PyTorch) and run npm run build:torch`,
      }
    }
    return {name: 'torch', available: false, reason: `addon found at ${addon} but the torch tfjs backend is not implemented in this version`}
  },
  async init(): Promise<string> {
    throw new Error('the torch backend is not available in this version')
  },
}
export default torch
