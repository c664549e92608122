import {existsSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {hostMemory, type BackendInitOptions, type BackendProbe, type DeviceMemory, type TensorBackendPlugin} from '../backend.js'

/** Where `npm run build:torch` puts the addon (relative to the package root; CODIEMB_TORCH_ADDON overrides). */
export function torchAddonPath(): string {
  if (process.env.CODIEMB_TORCH_ADDON) return process.env.CODIEMB_TORCH_ADDON
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir)
  return join(dir, 'native', 'build', 'Release', 'codiemb_torch.node')
}

const INSTALL_HINT =
  'install libtorch (Debian/Ubuntu: apt-get install libtorch-dev libopenblas0-pthread; or pip install torch; or set LIBTORCH=/path/to/libtorch) and run npm run build:torch'

/**
 * libtorch (ATen) through codiemb's Node-API addon (native/), as the tfjs backend `torch` on CPU or
 * CUDA. The probe loads the addon (cheap: no tfjs) to report the libtorch version and CUDA devices.
 */
const torch: TensorBackendPlugin = {
  async probe(): Promise<BackendProbe> {
    const addonPath = torchAddonPath()
    if (!existsSync(addonPath)) {
      return {name: 'torch', available: false, reason: `addon not built (${addonPath} missing): ${INSTALL_HINT}`}
    }
    try {
      const {loadTorchAddon} = await import('../torch/addon.js')
      const addon = loadTorchAddon()
      const info = addon.info()
      // Multi-process runs: which process groups this build has (Gloo, NCCL), or why none.
      const dist = addon.distInfo()
      const distributed = dist.available ? `distributed: ${dist.backends.join(', ')}` : 'no distributed training (see codiemb doctor --json)'
      const cuda = info.cudaAvailable
        ? `CUDA: ${info.cudaDeviceCount} device(s) (${info.cudaDeviceNames.join(', ')})`
        : info.builtWithCuda
          ? 'CUDA build, but no CUDA device visible'
          : 'CPU-only libtorch build'
      return {
        name: 'torch',
        available: true,
        reason: `libtorch ${info.version} (${cuda}; ${distributed})`,
        detail: {
          addon: addonPath,
          libtorchVersion: info.version,
          builtWithCuda: info.builtWithCuda,
          cudaAvailable: info.cudaAvailable,
          cudaDevices: info.cudaDeviceNames,
          cxx11Abi: info.cxx11Abi,
          // ATen's fused attention kernels (libtorch >= 2.6); an addon built before them reports none.
          attentionKernels: info.attentionKernels ?? [],
          distributedBackends: dist.backends,
          ...(dist.available ? {} : {distributedReason: dist.reason}),
          ...(dist.ncclReason ? {ncclReason: dist.ncclReason} : {}),
          ...(dist.glooReason ? {glooReason: dist.glooReason} : {}),
        },
      }
    } catch (error) {
      return {name: 'torch', available: false, reason: `${(error as Error).message.split('\n')[0]}; ${INSTALL_HINT}`}
    }
  },
  async init(options: BackendInitOptions): Promise<string> {
    const {registerTorchBackend} = await import('../torch/index.js')
    return registerTorchBackend({device: options.device, precision: options.precision})
  },
  /** CPU: host memory. CUDA: the device's total memory from the driver (addons built before it was reported give none). */
  async deviceMemory(options: BackendInitOptions): Promise<DeviceMemory> {
    const {loadTorchAddon} = await import('../torch/addon.js')
    const {resolveTorchDevice} = await import('../torch/index.js')
    const info = loadTorchAddon().info()
    const device = resolveTorchDevice(options.device, info)
    if (device === 'cpu') return hostMemory(true)
    const bytes = info.cudaDeviceTotalMemory?.[Number(device.slice('cuda:'.length))]
    if (bytes === undefined || bytes < 0) {
      const why = info.cudaDeviceTotalMemory ? 'the CUDA driver did not report it' : 'this torch addon predates the report (npm run build:torch)'
      return {device, source: `unknown: ${why}`, fusedKernels: true}
    }
    return {device, totalBytes: bytes, source: 'CUDA driver (cuDeviceTotalMem)', fusedKernels: true}
  },
}
export default torch
