#!/usr/bin/env node
// Builds the libtorch Node-API addon (native/build/Release/codiemb_torch.node) with node-gyp.
// libtorch is looked for in this order:
//   1. LIBTORCH=/path/to/libtorch (an unpacked libtorch zip or any dir with include/ and lib/)
//   2. a Python PyTorch install (`python3 -c "import torch"`; PYTHON overrides the interpreter)
//   3. the system (Debian/Ubuntu `libtorch-dev`: /usr/include + /usr/lib/<multiarch>)
// The C++ ABI (_GLIBCXX_USE_CXX11_ABI) is read from the library itself; CUDA is enabled when
// libtorch_cuda.so sits beside libtorch_cpu.so (CODIEMB_TORCH_CUDA=0 forces a CPU-only build); NCCL
// process groups when, besides, the CUDA and NCCL headers are found (CODIEMB_TORCH_NCCL=0: without).
// Usage: node scripts/build-torch.mjs [--print] (--print: only report what was found)
import {spawnSync} from 'node:child_process'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {dirname, join} from 'node:path'

const root = new URL('..', import.meta.url).pathname
const printOnly = process.argv.includes('--print')

function fromDir(dir, source) {
  const include = join(dir, 'include')
  const lib = join(dir, 'lib')
  if (existsSync(join(include, 'ATen', 'ATen.h')) && existsSync(join(lib, 'libtorch_cpu.so'))) return {source, include, lib}
  return undefined
}

function fromPython() {
  const python = process.env.PYTHON || 'python3'
  const r = spawnSync(python, ['-c', 'import torch, os; print(os.path.dirname(torch.__file__)); print(int(torch._C._GLIBCXX_USE_CXX11_ABI)); print(torch.__version__)'], {encoding: 'utf8'})
  if (r.status !== 0) return undefined
  const [dir, abi, version] = r.stdout.trim().split('\n')
  const found = fromDir(dir, `python (${python}: torch ${version} at ${dir})`)
  if (found) {
    found.abi = abi
    found.sitePackages = dirname(dir)
  }
  return found
}

function fromSystem() {
  const arch = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu'
  for (const lib of [`/usr/lib/${arch}`, '/usr/lib', '/usr/local/lib']) {
    for (const include of ['/usr/include', '/usr/local/include']) {
      if (existsSync(join(include, 'ATen', 'ATen.h')) && existsSync(join(lib, 'libtorch_cpu.so'))) return {source: `system (${include}, ${lib})`, include, lib}
    }
  }
  return undefined
}

/** libc10 mentions std::__cxx11 symbols only when built with the new C++11 ABI. */
function detectAbi(lib) {
  try {
    return readFileSync(join(lib, 'libc10.so')).includes('St7__cxx11') ? '1' : '0'
  } catch {
    return '1'
  }
}

/**
 * Multi-process training (native/src/distributed.cc) needs libtorch's c10d headers and a process group:
 * Gloo (CPU tensors, and CUDA ones through the host) or NCCL (CUDA tensors; detectNccl). Gloo needs its
 * own headers too: Debian's libtorch-dev has c10d's, libgloo-dev Gloo's (and Gloo's library, linked as
 * -lgloo). PyTorch's wheels link Gloo into libtorch_cpu but ship none of its headers (seen in torch
 * 2.11's), so a wheel build has NCCL alone. Without either the addon is built without c10d and its
 * distributed functions say so (CODIEMB_TORCH_C10D=0 forces that).
 */
function detectC10d({include, lib}) {
  if (process.env.CODIEMB_TORCH_C10D === '0') return {on: false, why: 'CODIEMB_TORCH_C10D=0', gloo: {on: false, why: 'CODIEMB_TORCH_C10D=0'}}
  if (!existsSync(join(include, 'torch', 'csrc', 'distributed', 'c10d', 'TCPStore.hpp'))) {
    const why = `no c10d headers (torch/csrc/distributed/c10d/TCPStore.hpp) under ${include}`
    return {on: false, why, gloo: {on: false, why}}
  }
  return {on: true, gloo: detectGloo({include, lib})}
}

function detectGloo({include, lib}) {
  if (!existsSync(join(include, 'torch', 'csrc', 'distributed', 'c10d', 'ProcessGroupGloo.hpp'))) return {on: false, why: `no torch/csrc/distributed/c10d/ProcessGroupGloo.hpp under ${include}`}
  const glooHeaders = [include, '/usr/include', '/usr/local/include'].find((dir) => existsSync(join(dir, 'gloo', 'config.h')))
  if (!glooHeaders) return {on: false, why: 'Gloo headers (gloo/config.h) not found: apt-get install libgloo-dev'}
  // A separate Gloo library beside libtorch or in the system's library folders (Debian: /usr/lib/libgloo.so).
  const arch = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu'
  const glooLib = [lib, `/usr/lib/${arch}`, '/usr/lib', '/usr/local/lib'].find((dir) => existsSync(join(dir, 'libgloo.so')))
  if (!glooLib && lib.startsWith('/usr/')) return {on: false, why: 'libgloo.so not found beside a system libtorch: apt-get install libgloo-dev'}
  return {on: true, glooLib}
}

/**
 * The folders holding the CUDA runtime's headers and the libraries' beside it: a CUDA toolkit
 * (CUDA_HOME, CUDA_PATH), the nvidia-* wheels installed beside torch (site-packages/nvidia/<part>/include,
 * or nvidia/cu13/include in CUDA 13's), then /usr/local/cuda. Their CUDA is the one torch was built with.
 */
function cudaIncludeDirs({sitePackages}) {
  const dirs = []
  for (const home of [process.env.CUDA_HOME, process.env.CUDA_PATH]) if (home) dirs.push(join(home, 'include'))
  if (sitePackages && existsSync(join(sitePackages, 'nvidia'))) {
    for (const part of readdirSync(join(sitePackages, 'nvidia')).sort()) dirs.push(join(sitePackages, 'nvidia', part, 'include'))
  }
  dirs.push('/usr/local/cuda/include', '/usr/include')
  return [...new Set(dirs)].filter((dir) => existsSync(dir))
}

/**
 * NCCL process groups (ProcessGroupNCCL, in libtorch_cuda) need, besides a CUDA libtorch with c10d, the
 * headers its own headers include: the CUDA runtime, cuBLAS, cuSPARSE (ATen/cuda/CUDAContext.h) and
 * nccl.h. They come from a CUDA toolkit (CUDA_HOME, /usr/local/cuda) or, for PyTorch's pip wheels,
 * from the nvidia-*-cu12 wheels installed beside torch (site-packages/nvidia/<part>/include: nccl.h
 * from nvidia-nccl-cu12). Every such folder found is passed on; the build needs each header in one.
 */
function detectNccl({include, sitePackages}, cuda, c10d) {
  if (process.env.CODIEMB_TORCH_NCCL === '0') return {on: false, why: 'CODIEMB_TORCH_NCCL=0'}
  if (cuda !== '1') return {on: false, why: 'a CPU-only libtorch (no libtorch_cuda)'}
  if (!c10d.on) return {on: false, why: 'no c10d'}
  if (!existsSync(join(include, 'torch', 'csrc', 'distributed', 'c10d', 'ProcessGroupNCCL.hpp'))) return {on: false, why: `no torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp under ${include}`}
  const existing = cudaIncludeDirs({sitePackages})
  const missing = ['cuda_runtime_api.h', 'cublas_v2.h', 'cusparse.h', 'nccl.h'].filter((h) => !existing.some((dir) => existsSync(join(dir, h))))
  if (missing.length > 0)
    return {on: false, why: `${missing.join(', ')} not found in ${existing.join(', ') || '(no CUDA include folder)'} (set CUDA_HOME to a CUDA toolkit; nccl.h: pip install nvidia-nccl-cu12)`}
  // /usr/include is searched anyway; passing it with -I would reorder it before libtorch's own folders.
  return {on: true, includes: existing.filter((dir) => dir !== '/usr/include')}
}

let found
if (process.env.LIBTORCH) {
  found = fromDir(process.env.LIBTORCH, `LIBTORCH=${process.env.LIBTORCH}`)
  if (!found) {
    console.error(`LIBTORCH=${process.env.LIBTORCH} has no include/ATen/ATen.h and lib/libtorch_cpu.so`)
    process.exit(2)
  }
}
found ??= fromPython() ?? fromSystem()
if (!found) {
  console.error(
    'libtorch not found. Install one of:\n' +
      '  Debian/Ubuntu: sudo apt-get install libtorch-dev libopenblas0-pthread\n' +
      '  PyTorch:       pip install torch   (then rerun; PYTHON=/path/to/python picks the interpreter)\n' +
      '  libtorch zip:  unpack from pytorch.org and set LIBTORCH=/path/to/libtorch',
  )
  process.exit(2)
}
found.abi ??= detectAbi(found.lib)
// Recent libtorch headers refuse anything older than C++20 (ATen.h says so); earlier ones build as C++17.
const std = readFileSync(join(found.include, 'ATen', 'ATen.h'), 'utf8').includes('C++20 or later') ? 'c++20' : 'c++17'
const cuda = process.env.CODIEMB_TORCH_CUDA !== '0' && existsSync(join(found.lib, 'libtorch_cuda.so')) ? '1' : '0'
const c10d = detectC10d(found)
const nccl = detectNccl(found, cuda, c10d)
const withC10d = c10d.on && (c10d.gloo.on || nccl.on)
// The CUDA caching allocator's statistics (native/src/device-memory.cc) include the CUDA runtime's headers.
const cudaIncludes = cuda === '1' ? cudaIncludeDirs(found).filter((dir) => dir !== '/usr/include') : []
const cudaHeaders = cuda === '1' && [...cudaIncludes, '/usr/include'].some((dir) => existsSync(join(dir, 'cuda_runtime_api.h')))
console.log(`libtorch: ${found.source}\n  include ${found.include}\n  lib     ${found.lib}\n  _GLIBCXX_USE_CXX11_ABI=${found.abi}  -std=${std}  cuda=${cuda === '1' ? 'yes' : 'no'}`)
console.log(`  distributed (c10d): ${withC10d ? 'yes' : `no: ${c10d.on ? 'neither Gloo nor NCCL process groups (below)' : c10d.why}`}`)
console.log(`  Gloo process groups: ${c10d.gloo.on ? `yes${c10d.gloo.glooLib ? ` (Gloo library in ${c10d.gloo.glooLib})` : ' (Gloo inside libtorch)'}` : `no: ${c10d.gloo.why}`}`)
console.log(`  NCCL process groups: ${nccl.on ? `yes (CUDA/NCCL headers from ${nccl.includes.join(', ') || '/usr/include'})` : `no: ${nccl.why}`}`)
if (cuda === '1') console.log(`  CUDA allocator statistics: ${cudaHeaders ? 'yes' : 'no: cuda_runtime_api.h not found (set CUDA_HOME)'}`)
if (printOnly) process.exit(0)

// node-gyp downloads Node's headers unless it is pointed at a local copy (offline machines).
const nodeDir = dirname(dirname(process.execPath))
const gypArgs = ['rebuild', '--directory', join(root, 'native'), `--jobs=${process.env.JOBS || 'max'}`]
if (process.env.npm_config_nodedir) gypArgs.push(`--nodedir=${process.env.npm_config_nodedir}`)
else if (existsSync(join(nodeDir, 'include', 'node', 'node_api.h'))) gypArgs.push(`--nodedir=${nodeDir}`)
gypArgs.push('--', `-Dtorch_include=${found.include}`, `-Dtorch_lib=${found.lib}`, `-Dcxx11_abi=${found.abi}`, `-Dcxx_std=${std}`, `-Dwith_cuda=${cuda}`, `-Dwith_c10d=${withC10d ? 1 : 0}`, `-Dwith_gloo=${c10d.gloo.on ? 1 : 0}`, `-Dgloo_lib=${c10d.gloo.glooLib ?? ''}`, `-Dwith_nccl=${nccl.on ? 1 : 0}`, `-Dcuda_headers=${cudaHeaders ? 1 : 0}`, `-Dcuda_includes=${(nccl.on ? nccl.includes : cudaIncludes).map((dir) => `'${dir}'`).join(' ')}`)

const require = createRequire(import.meta.url)
const gyp = require.resolve('node-gyp/bin/node-gyp.js')
const started = Date.now()
const r = spawnSync(process.execPath, [gyp, ...gypArgs], {stdio: 'inherit', cwd: root})
if (r.status !== 0) process.exit(r.status ?? 1)
console.log(`built native/build/Release/codiemb_torch.node in ${((Date.now() - started) / 1000).toFixed(1)} s`)
