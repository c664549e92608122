/**
 * Attention parity and memory check for the torch backend on one device (the GPU run of
 * scripts/torch-device-check.sh; runs end to end on CPU too). For every attention kernel the addon
 * has (chunked always; flash-cpu, flash, efficient, cudnn on libtorch >= 2.6) it prints, per case:
 *  1. parity: output and dq, dk, dv against the plain formulation softmax(q kᵀ·scale + mask) v run
 *     op by op on the same backend, as max |a − b| / max |b| (float32: must be <= 1e-5; bfloat16
 *     products, --precision bf16: <= 3e-2), for an unpadded batch and a padded one ([B,1,1,T] mask);
 *     The same for packedAttention (a BERT layer's packed [B·T, 3·H] projection, q/k/v as views of it)
 *     against the plain formulation on its split heads: output and d qkv;
 *  2. dropout: with v = identity the output shows the kept mask: the kept fraction (≈ 1 − rate) and
 *     whether one seed gives one mask;
 *  3. memory: bytes kept for backward (tfjs tensors plus the kernel's stashed ATen state) at T and
 *     2T: linear (×2), against the plain formulation (×4);
 *  4. on CUDA, or with CODIEMB_ATTENTION_LARGE=1: one bge-large-sized layer (B=64, 16 heads,
 *     T=512, d=64; CODIEMB_ATTENTION_BATCH to change B), forward + backward time and bytes kept.
 * Exits 1 when a parity or memory check fails. Environment: CODIEMB_DEVICE (cpu, cuda),
 * CODIEMB_PRECISION (fp32, tf32, bf16), CODIEMB_TORCH_THREADS.
 * Run: npm run build && node dist/bench/attention.check.js
 */
import * as tf from '@tensorflow/tfjs-core'
import {attention, packedAttention} from '../src/tensor/ops.js'
import type {TorchBackend} from '../src/tensor/torch/backend.js'
import type {AttentionKernel} from '../src/tensor/torch/addon.js'

const device = process.env.CODIEMB_DEVICE ?? 'cpu'
const precision = (process.env.CODIEMB_PRECISION ?? 'fp32') as 'fp32' | 'tf32' | 'bf16'
let failed = false
const fail = (msg: string) => {
  failed = true
  console.log(`  FAIL ${msg}`)
}

function rand(shape: number[], seed: number): tf.Tensor {
  const out = new Float32Array(tf.util.sizeFromShape(shape))
  let s = seed >>> 0 || 1
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    out[i] = s / 2 ** 31 - 1
  }
  return tf.tensor(out, shape)
}

function plain(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, scale: number, mask?: tf.Tensor): tf.Tensor {
  let s = tf.mul(tf.matMul(q, k, false, true), scale)
  if (mask) s = tf.add(s, mask)
  return tf.matMul(tf.softmax(s), v)
}

function relativeError(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync()
  const y = b.dataSync()
  let diff = 0
  let size = 0
  for (let i = 0; i < y.length; i++) {
    diff = Math.max(diff, Math.abs(x[i]! - y[i]!))
    size = Math.max(size, Math.abs(y[i]!))
  }
  return diff / Math.max(size, 1e-30)
}

function paddingMask(B: number, T: number, padded: boolean): tf.Tensor | undefined {
  if (!padded) return undefined
  const row = new Float32Array(B * T)
  for (let b = 0; b < B; b++) for (let t = T - Math.floor((b * T) / (2 * B)); t < T; t++) row[b * T + t] = -1e9
  return tf.tensor4d(row, [B, 1, 1, T])
}

function stashedBytes(backend: TorchBackend, y: tf.Tensor): number {
  const width: Record<string, number> = {int64: 8, float64: 8, float32: 4, int32: 4, bfloat16: 2, float16: 2, bool: 1, uint8: 1}
  return (backend.stashed(y as unknown as tf.TensorInfo) ?? []).reduce((n, h) => n + tf.util.sizeFromShape(backend.addon.shape(h)) * (width[backend.addon.dtype(h)] ?? 4), 0)
}

/** Bytes alive after the forward pass under a gradient tape (less the inputs), and the path taken. */
function keptBytes(backend: TorchBackend, shape: number[], f: (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.Tensor): number {
  let kept = 0
  tf.tidy(() => {
    const [q, k, v] = [1, 2, 3].map((s) => rand(shape, s))
    tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => {
      const before = tf.memory().numBytes
      const y = f(a, b, c)
      kept = tf.memory().numBytes - before + stashedBytes(backend, y)
      return tf.sum(y) as tf.Scalar
    })([q, k, v])
  })
  return kept
}

function parity(backend: TorchBackend, kernel: AttentionKernel): void {
  const tolerance = precision === 'bf16' ? 3e-2 : 1e-5
  const [B, H, T, d] = [4, 4, 96, 64]
  for (const padded of [false, true]) {
    tf.tidy(() => {
      const [q, k, v, w] = [1, 2, 3, 4].map((s) => rand([B, H, T, d], s + (padded ? 10 : 0)))
      const mask = paddingMask(B, T, padded)
      const scale = 1 / Math.sqrt(d)
      const loss = (f: (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.Tensor) => (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(f(a, b, c), w!)) as tf.Scalar
      const ours = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => attention(a, b, c, {maskBias: mask, scale, blockRows: 40})
      const got = [ours(q!, k!, v!), ...tf.grads(loss(ours))([q!, k!, v!])]
      const path = backend.lastAttentionPath
      const want = [plain(q!, k!, v!, scale, mask), ...tf.grads(loss((a, b, c) => plain(a, b, c, scale, mask)))([q!, k!, v!])]
      const errors = got.map((t, i) => relativeError(t, want[i]!))
      console.log(`  parity ${padded ? 'padded  ' : 'unpadded'} [${B},${H},${T},${d}] path ${path}: ${['out', 'dq', 'dk', 'dv'].map((n, i) => `${n} ${errors[i]!.toExponential(1)}`).join(', ')}`)
      if (errors.some((e) => !(e <= tolerance))) fail(`${kernel} ${padded ? 'padded' : 'unpadded'}: relative error above ${tolerance}`)
    })
  }
}

function packedParity(backend: TorchBackend, kernel: AttentionKernel): void {
  const tolerance = precision === 'bf16' ? 3e-2 : 1e-5
  const [B, heads, T, d] = [4, 4, 96, 64]
  const H = heads * d
  for (const padded of [false, true]) {
    tf.tidy(() => {
      const qkv = rand([B * T, 3 * H], padded ? 21 : 20)
      const w = rand([B * T, H], 22)
      const mask = paddingMask(B, T, padded)
      const scale = 1 / Math.sqrt(d)
      const toHeads = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [B, T, heads, d]), [0, 2, 1, 3])
      const theirs = (x: tf.Tensor) => {
        const [q, k, v] = tf.split(x, 3, 1).map(toHeads)
        return tf.reshape(tf.transpose(plain(q!, k!, v!, scale, mask), [0, 2, 1, 3]), [B * T, H])
      }
      const ours = (x: tf.Tensor) => packedAttention(x, {batch: B, heads, maskBias: mask, scale, blockRows: 40})
      const loss = (f: (x: tf.Tensor) => tf.Tensor) => (x: tf.Tensor) => tf.sum(tf.mul(f(x), w)) as tf.Scalar
      const got = [ours(qkv), tf.grad(loss(ours))(qkv)]
      const path = backend.lastAttentionPath
      const errors = [theirs(qkv), tf.grad(loss(theirs))(qkv)].map((t, i) => relativeError(got[i]!, t))
      console.log(`  packed ${padded ? 'padded  ' : 'unpadded'} [${B * T},${3 * H}] path ${path}: out ${errors[0]!.toExponential(1)}, dqkv ${errors[1]!.toExponential(1)}`)
      if (errors.some((e) => !(e <= tolerance))) fail(`${kernel} packed ${padded ? 'padded' : 'unpadded'}: relative error above ${tolerance}`)
    })
  }
}

function dropoutCheck(kernel: AttentionKernel): void {
  const [B, H, T, rate] = [4, 4, 64, 0.1]
  tf.tidy(() => {
    const q = rand([B, H, T, T], 5)
    const k = rand([B, H, T, T], 6)
    const v = tf.tile(tf.reshape(tf.eye(T), [1, 1, T, T]), [B, H, 1, 1])
    const run = (seed: number) => attention(q, k, v, {dropoutRate: rate, seed}).dataSync()
    const a = run(3)
    let kept = 0
    for (const x of a) if (x !== 0) kept++
    const fraction = kept / a.length
    const same = run(3).every((x, i) => x === a[i])
    const other = run(4).some((x, i) => x !== a[i])
    console.log(`  dropout ${rate}: kept ${fraction.toFixed(4)} (expected ≈ ${1 - rate}), same seed same mask ${same}, other seed other mask ${other}`)
    if (Math.abs(fraction - (1 - rate)) > 0.02 || !same || !other) fail(`${kernel} dropout statistics or seeding`)
  })
}

function memory(backend: TorchBackend, kernel: AttentionKernel): void {
  const shape = (T: number) => [2, 4, T, 64]
  const ours = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => attention(a, b, c, {maskBias: tf.zeros([2, 1, 1, a.shape[2]!]), blockRows: 64})
  const [o1, o2] = [256, 512].map((T) => keptBytes(backend, shape(T), ours))
  const [p1, p2] = [256, 512].map((T) => keptBytes(backend, shape(T), (a, b, c) => plain(a, b, c, 0.125, tf.zeros([2, 1, 1, a.shape[2]!]))))
  console.log(`  kept for backward T=256 → 512: ${o1} → ${o2} bytes (×${(o2 / o1).toFixed(2)}); plain formulation ${p1} → ${p2} (×${(p2 / p1).toFixed(2)})`)
  if (o2 / o1 > 2.2) fail(`${kernel}: kept bytes grow faster than linearly in T`)
}

function large(backend: TorchBackend): void {
  const B = Number(process.env.CODIEMB_ATTENTION_BATCH) || 64
  const shape = [B, 16, 512, 64]
  const mask = paddingMask(B, 512, true)!
  const kept = keptBytes(backend, shape, (a, b, c) => attention(a, b, c, {maskBias: mask}))
  const [q, k, v] = [1, 2, 3].map((s) => rand(shape, s))
  const t0 = performance.now()
  // Read back one number (which waits for the device) and return nothing: a tidy walks what its
  // callback returns, and a 33M-element typed array overflowed its Set (and took seconds to walk).
  tf.tidy(() => {
    tf.sum(tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(attention(a, b, c, {maskBias: mask})) as tf.Scalar)([q!, k!, v!])[0]!).dataSync()
  })
  const ms = performance.now() - t0
  const probs = B * 16 * 512 * 512 * 4
  console.log(`  bge-large layer [${shape}] path ${backend.lastAttentionPath}: fwd+bwd ${ms.toFixed(0)} ms, kept for backward ${(kept / 2 ** 20).toFixed(0)} MiB (the probabilities alone: ${(probs / 2 ** 20).toFixed(0)} MiB)`)
  tf.dispose([q!, k!, v!, mask])
}

async function main(): Promise<void> {
  const {registerTorchBackend, loadTorchAddon} = await import('../src/tensor/torch/index.js')
  registerTorchBackend({device, precision})
  await tf.setBackend('torch')
  const backend = tf.backend() as unknown as TorchBackend
  const info = loadTorchAddon().info()
  console.log(`# attention check: libtorch ${info.version}, device ${device} ${info.cudaDeviceNames.join(', ')}, precision ${precision}, fused kernels: ${info.attentionKernels.join(', ') || 'none (chunked only)'}`)
  const kernels: AttentionKernel[] = ['chunked', 'auto', ...(info.attentionKernels as AttentionKernel[])]
  for (const kernel of kernels) {
    console.log(`kernel ${kernel}`)
    backend.attentionKernel = kernel
    try {
      tf.tidy(() => attention(tf.zeros([1, 1, 8, 64]), tf.zeros([1, 1, 8, 64]), tf.zeros([1, 1, 8, 64])))
    } catch (error) {
      console.log(`  not available here: ${(error as Error).message.split('\n')[0]}`)
      continue
    }
    parity(backend, kernel)
    packedParity(backend, kernel)
    try {
      dropoutCheck(kernel)
    } catch (error) {
      console.log(`  dropout: not available: ${(error as Error).message.split('\n')[0]}`)
    }
    memory(backend, kernel)
    if (device.startsWith('cuda') || process.env.CODIEMB_ATTENTION_LARGE === '1') large(backend)
  }
  console.log(failed ? 'attention check: FAILED' : 'attention check: ok')
  process.exit(failed ? 1 : 0)
}

await main()
