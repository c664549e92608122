/**
 * The torch backend's figures, side by side with PyTorch where there is a like-for-like reference:
 *  1. CPU matmul GFLOP/s (1024^2 float32) through tfjs on the torch backend, and PyTorch's;
 *  2. per-call overhead: one ATen call through the addon, and one tfjs kernel on the torch backend;
 *     the attention kernel and the hidden-state dropout alone at the MiniLM case's shape, beside
 *     PyTorch's eager attention and F.dropout;
 *  3. an IR training step (BERT-style encoder, queries x 64 tokens + 5 passages each x 128 tokens,
 *     InfoNCE over CLS embeddings, AdamW) and encoding throughput, codiemb `torch` vs PyTorch
 *     (bench/torch_reference.py) on the same model, batch and loss, with the ratio and each side's
 *     peak resident memory over the training steps (VmHWM after a reset, Linux). `minilm-512` is
 *     the paper's length: 4 queries x 512 + 20 passages x 512 tokens, encoding 32 x 512. Needs the
 *     encoder (src/model/encoder.ts) and ../shared (a tokenizer to build the model); skipped with the
 *     reason otherwise. CODIEMB_BENCH_PROFILE=1 adds the per-kernel profile of one step and of one
 *     encoding batch (tf.profile with the backend's per-kernel timer).
 * Environment: CODIEMB_BENCH_MODELS (default minilm,bert-base,minilm-512), CODIEMB_BENCH_STEPS (default 2),
 * CODIEMB_PYTHON (a python with torch; default: /usr/bin/python3, then python3), CODIEMB_TORCH_THREADS,
 * CODIEMB_BENCH_INTERLEAVE=1 (alternate codiemb's and PyTorch's rounds, one step or encoding batch
 * each, with both processes alive: same-run ratios that hold up under a shared machine's load; the
 * default runs PyTorch after codiemb, one model in memory at a time).
 * Run: npm run build && node dist/bench/torch.bench.js
 */
import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {availableParallelism} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import * as tf from '@tensorflow/tfjs-core'
import {torchAddonPath} from '../src/tensor/backends/torch.js'
import type {TorchAddon, TorchHandle} from '../src/tensor/torch/addon.js'
import {batchOf, clsEmbeddings, InterleavedReference, irTrainStep, median, python} from './ir-step.js'

const root = (() => {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) || dir.endsWith('dist')) dir = dirname(dir)
  return dir
})()
const threads = Number(process.env.CODIEMB_TORCH_THREADS) || availableParallelism()
const steps = Number(process.env.CODIEMB_BENCH_STEPS) || 2

function pytorch(py: string | undefined, args: Record<string, number>): Record<string, number> | string {
  if (!py) return 'no python with torch (apt-get install python3-torch, or set CODIEMB_PYTHON)'
  const argv = Object.entries(args).flatMap(([k, v]) => [`--${k}`, String(v)])
  const device = process.env.CODIEMB_DEVICE ?? 'cpu'
  const precision = process.env.CODIEMB_PRECISION ?? 'fp32'
  const r = spawnSync(py, [join(root, 'bench', 'torch_reference.py'), ...argv, '--threads', String(threads), '--device', device, '--precision', precision], {encoding: 'utf8'})
  if (r.status !== 0) return `PyTorch reference failed: ${r.stderr.trim().split('\n').pop()}`
  if (args.profile) console.log(`  PyTorch's autograd profile of one training step:\n${r.stderr.trimEnd()}`)
  return JSON.parse(r.stdout.trim().split('\n').pop()!)
}

function timeIt(n: number, fn: () => void): number {
  const t0 = performance.now()
  for (let i = 0; i < n; i++) fn()
  return (performance.now() - t0) / n
}

async function micro(py: string | undefined): Promise<void> {
  const {loadTorchAddon} = await import('../src/tensor/torch/addon.js')
  const addon = loadTorchAddon()
  const a = tf.randomNormal([1024, 1024])
  const b = tf.randomNormal([1024, 1024])
  // Read back outside tf.tidy: a tidy walks whatever its callback returns looking for tensors, which
  // for a million-element typed array costs far more than the matmul.
  const product = () => {
    const c = tf.matMul(a, b)
    c.dataSync()
    c.dispose()
  }
  product()
  const ms = timeIt(10, product)
  console.log(`matmul 1024x1024 float32 (torch backend, ${threads} threads): ${((2 * 1024 ** 3) / (ms / 1000) / 1e9).toFixed(1)} GFLOP/s`)
  if (py) {
    const r = spawnSync(py, ['-c', `import torch,time\ntorch.set_num_threads(${threads})\na=torch.randn(1024,1024);b=torch.randn(1024,1024);a@b\nt=time.perf_counter()\nfor _ in range(10): a@b\nprint(2*1024**3*10/(time.perf_counter()-t)/1e9)`], {encoding: 'utf8'})
    if (r.status === 0) console.log(`matmul 1024x1024 float32 (PyTorch ${threads} threads): ${Number(r.stdout).toFixed(1)} GFLOP/s`)
  }
  const add = addon.op('aten::add', 'Tensor')
  const x = addon.fromArray(new Float32Array([1]), [1], 'float32')
  for (let i = 0; i < 1000; i++) addon.release(add(x, x))
  const rawUs = timeIt(100000, () => addon.release(add(x, x))) * 1000
  console.log(`per-call overhead, one ATen op through the addon (1-element add): ${rawUs.toFixed(2)} us`)
  const s = tf.scalar(1)
  // Dispose what tidy returns: a loop that keeps every result alive times its growing memory too.
  const kernelUs = timeIt(20000, () => tf.tidy(() => tf.add(s, s)).dispose()) * 1000
  console.log(`per-call overhead, one tfjs kernel on the torch backend (scalar add in a tidy, disposed): ${kernelUs.toFixed(2)} us`)
  tf.dispose([a, b, s])
  attentionMicro(addon, py)
}

/**
 * The attention kernel alone at the MiniLM case's passage shape ([80, 12, 128, 32], q/k/v as the
 * heads' transposed views, padding bias, dropout 0.1) and the hidden-state dropout of [10240, 384],
 * against PyTorch's eager attention (matmul, softmax, dropout, matmul; forward, then backward) and
 * F.dropout at the same shapes: best of 4 each.
 */
function attentionMicro(addon: TorchAddon, py: string | undefined): void {
  const [B, H, T, D] = [80, 12, 128, 32]
  const best = (f: () => void, n = 4) => {
    f()
    let ms = Infinity
    for (let i = 0; i < n; i++) {
      const t0 = performance.now()
      f()
      ms = Math.min(ms, performance.now() - t0)
    }
    return ms
  }
  const values = (n: number) => Float32Array.from({length: n}, (_, i) => Math.sin(i * 0.37))
  const held: unknown[] = []
  const keep = <X>(x: X): X => (held.push(x), x)
  const heads = () => keep(addon.op('aten::permute')(keep(addon.fromArray(values(B * T * H * D), [B, T, H, D], 'float32')), [0, 2, 1, 3]))
  const [q, k, v, dy] = [heads(), heads(), heads(), heads()]
  const bias = keep(addon.fromArray(new Float32Array(B * T), [B, 1, 1, T], 'float32'))
  const options = {scale: 1 / Math.sqrt(D), dropout: 0.1, seed: 5, blockRows: Math.max(16, Math.floor(2 ** 24 / (B * H * T))), bf16: false, kernel: 'chunked' as const}
  const forward = best(() => {
    const [out, state] = addon.attention(q, k, v, bias, options, true)
    for (const t of [out, ...state]) addon.release(t)
  })
  const [out, state] = addon.attention(q, k, v, bias, options, true)
  const backward = best(() => addon.attentionBackward(dy, q, k, v, bias, out, state, options, true, false).forEach((g) => addon.release(g)))
  const x = keep(addon.fromArray(values(10240 * 384), [10240, 384], 'float32'))
  const dropout = best(() => (addon.dropout ? addon.dropout(x, 0.1, 3) : (addon.op('aten::native_dropout')(x, 0.1, true) as TorchHandle[])).forEach((t) => addon.release(t)))
  for (const t of [out, ...state, ...held]) addon.release(t as TorchHandle)
  console.log(`attention [${B}, ${H}, ${T}, ${D}], padding bias, dropout 0.1 (chunked kernel): forward ${forward.toFixed(0)} ms, backward ${backward.toFixed(0)} ms; dropout of [10240, 384]: ${dropout.toFixed(1)} ms`)
  if (!py) return
  const script = [
    'import torch, time, math', 'import torch.nn.functional as F', `torch.set_num_threads(${threads})`,
    `B, H, T, D = ${B}, ${H}, ${T}, ${D}`,
    'heads = lambda: torch.randn(B, T, H, D).transpose(1, 2).requires_grad_()', 'q, k, v = heads(), heads(), heads()',
    'mask = torch.zeros(B, 1, 1, T); dy = torch.randn(B, H, T, D); x = torch.randn(10240, 384)',
    'def fwd(): return torch.matmul(F.dropout((torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(D) + mask).softmax(-1), 0.1, True), v)',
    'def best(f, n=4):', '    f(); r = []', '    for _ in range(n):', '        t = time.perf_counter(); f(); r.append(time.perf_counter() - t)', '    return min(r) * 1000',
    'f = best(fwd); fb = best(lambda: fwd().backward(dy)); d = best(lambda: F.dropout(x, 0.1, True))',
    'print(f"{f:.0f} {fb - f:.0f} {d:.1f}")',
  ].join('\n')
  const r = spawnSync(py, ['-c', script], {encoding: 'utf8'})
  if (r.status !== 0) return console.log(`  PyTorch attention micro failed: ${r.stderr.trim().split('\n').pop()}`)
  const [f, b, d] = r.stdout.trim().split(' ')
  console.log(`  PyTorch eager attention, same shape: forward ${f} ms, backward ${b} ms (forward+backward less forward); F.dropout of [10240, 384]: ${d} ms`)
}

interface ModelSize {
  name: string
  layers: number
  hidden: number
  heads: number
  intermediate: number
  queries: number
  /** Query and passage length (default 64 and 128); encoding batches are at the passage length. */
  queryLen?: number
  passageLen?: number
  /** Passages per query (default 5: one positive, four negatives). */
  perQuery?: number
  /** Activation checkpointing per encoder layer, on both sides (the paper's large batches need it). */
  checkpoint?: boolean
}
const SIZES: Record<string, ModelSize> = {
  tiny: {name: 'tiny 2x64 (smoke run)', layers: 2, hidden: 64, heads: 4, intermediate: 256, queries: 4},
  'tiny-512': {name: 'tiny 2x64 at T = 512 (smoke run)', layers: 2, hidden: 64, heads: 4, intermediate: 256, queries: 1, queryLen: 512, passageLen: 512},
  minilm: {name: 'MiniLM-sized 6x384', layers: 6, hidden: 384, heads: 12, intermediate: 1536, queries: 16},
  'bert-base': {name: 'bert-base-sized 12x768', layers: 12, hidden: 768, heads: 12, intermediate: 3072, queries: 4},
  'minilm-512': {name: 'MiniLM-sized 6x384 at T = 512', layers: 6, hidden: 384, heads: 12, intermediate: 1536, queries: 4, queryLen: 512, passageLen: 512},
  // The paper's per-device batch for bge-large-zh-v1.5: 64 queries + 64 x 6 passages, all at 512 tokens,
  // with activation checkpointing (a GPU case: scripts/torch-device-check.sh). The tiny one runs the
  // same code paths on a CPU (the script's dry run).
  'bge-large-512': {name: 'bge-large-sized 24x1024 at T = 512, paper batch, checkpointed', layers: 24, hidden: 1024, heads: 16, intermediate: 4096, queries: 64,
    queryLen: 512, passageLen: 512, perQuery: 6, checkpoint: true},
  'tiny-large-512': {name: 'tiny 2x64 at T = 512, 2 queries x 6 passages, checkpointed (smoke run of bge-large-512)', layers: 2, hidden: 64, heads: 4, intermediate: 256,
    queries: 2, queryLen: 512, passageLen: 512, perQuery: 6, checkpoint: true},
}

/** Resets this process's resident-memory high-water mark (Linux; false elsewhere). */
function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5')
    return true
  } catch {
    return false
  }
}

/** VmHWM in bytes: the peak resident memory since the last reset. */
function peakRss(): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))
    return m ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

const gb = (bytes: number | undefined) => (bytes === undefined ? 'n/a' : `${(bytes / 1e9).toFixed(2)} GB`)

/** A full-length batch of random token ids (every row attended), the shape the tokenizer produces. */
/** Where one step's time goes, by tfjs kernel (tf.profile with the backend's per-kernel timer). */
async function profileStep(what: string, trainStep: () => void): Promise<void> {
  const t0 = performance.now()
  const info = await tf.profile(() => {
    trainStep()
  })
  const wall = performance.now() - t0
  const byKernel = new Map<string, {ms: number; calls: number}>()
  for (const k of info.kernels) {
    const e = byKernel.get(k.name) ?? {ms: 0, calls: 0}
    e.ms += Number(k.kernelTimeMs) || 0
    e.calls++
    byKernel.set(k.name, e)
  }
  const total = [...byKernel.values()].reduce((a, e) => a + e.ms, 0)
  console.log(`  profile of ${what}: ${info.kernels.length} kernel calls, ${total.toFixed(0)} ms in kernels of ${wall.toFixed(0)} ms wall (profiling adds overhead)`)
  for (const [name, e] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 14)) {
    console.log(`    ${name.padEnd(24)} ${e.ms.toFixed(1).padStart(8)} ms ${((100 * e.ms) / total).toFixed(1).padStart(5)} %  ${String(e.calls).padStart(5)} calls`)
  }
}

type BenchAddon = {synchronize(i?: number): void; cudaMemoryStats(i?: number): {peakAllocated: number; peakReserved: number} | null; cudaResetPeakMemoryStats(i?: number): boolean; cudaEmptyCache(): boolean}
const benchAddon = () => (tf.backend() as unknown as {addon?: BenchAddon}).addon

/** Waits for queued CUDA work so step times are real (a no-op on CPU). */
function syncDevice(): void {
  benchAddon()?.synchronize()
}

const onCuda = (process.env.CODIEMB_DEVICE ?? 'cpu').startsWith('cuda')

/** The CUDA caching allocator's peaks on the bench's device (undefined on CPU), as PyTorch's side reports them. */
function cudaPeaks(): {peakAllocated: number; peakReserved: number} | undefined {
  if (!onCuda) return undefined
  return benchAddon()?.cudaMemoryStats() ?? undefined
}

async function irStep(size: ModelSize, py: string | undefined): Promise<void> {
  const encoderJs = join(root, 'dist', 'src', 'model', 'encoder.js')
  const sharedDir = process.env.CODIEMB_SHARED || join(root, '..', 'shared')
  const tokenizerDir = join(sharedDir, 'fixtures', 'models', 'bert-tiny', 'model')
  if (!existsSync(encoderJs)) return console.log(`IR step (${size.name}): skipped: the encoder (src/model/encoder.ts) is not in this build`)
  if (!existsSync(tokenizerDir)) return console.log(`IR step (${size.name}): skipped: ../shared is absent (needs ${tokenizerDir})`)
  const {initRandomEncoder} = await import(pathToFileURL(encoderJs).href)
  await import('../src/tensor/gradients.js') // tfjs kernel gradients (tfjs-core ships none)
  const ops = await import('../src/tensor/ops.js')
  const {variableGrads} = await import('../src/tensor/backprop.js')
  const {builtinRegistry} = await import('../src/builtins.js')
  const enc = await initRandomEncoder({registry: await builtinRegistry(), arch: 'bert', tokenizerDir, layers: size.layers, hidden: size.hidden, heads: size.heads, intermediate: size.intermediate, seed: 1})
  const vocab = enc.config.vocab_size as number
  const nq = Number(process.env.CODIEMB_BENCH_QUERIES) || size.queries
  const PER_QUERY = size.perQuery ?? 5
  const np = nq * PER_QUERY
  const QUERY_LEN = size.queryLen ?? 64
  const PASSAGE_LEN = size.passageLen ?? 128
  const ir = irTrainStep(enc, ops, variableGrads, {queries: nq, perQuery: PER_QUERY, queryLen: QUERY_LEN, passageLen: PASSAGE_LEN, checkpoint: size.checkpoint})
  let optimizerS = 0 // the last step's AdamW update (on a GPU only its launch time: no sync inside the step)
  const trainStep = () => {
    optimizerS = ir.step().optimizerS
    syncDevice()
  }
  const encRows = Number(process.env.CODIEMB_BENCH_ENCODE_BATCH) || 32
  const profile = process.env.CODIEMB_BENCH_PROFILE === '1'
  const refArgs = {layers: size.layers, hidden: size.hidden, heads: size.heads, intermediate: size.intermediate, queries: nq, 'query-len': QUERY_LEN,
    'passages-per-query': PER_QUERY, 'passage-len': PASSAGE_LEN, steps, vocab, 'encode-batch': encRows, 'encode-batches': 2, checkpoint: size.checkpoint ? 1 : 0,
    profile: profile ? 1 : 0}
  // Alternating rounds: the reference starts now (building its model and warming up beside ours).
  const interleaved = py && process.env.CODIEMB_BENCH_INTERLEAVE === '1'
    ? new InterleavedReference(py, [join(root, 'bench', 'torch_reference.py'), ...Object.entries({...refArgs, interleave: 1}).flatMap(([k, v]) => [`--${k}`, String(v)]),
      '--threads', String(threads), '--device', process.env.CODIEMB_DEVICE ?? 'cpu', '--precision', process.env.CODIEMB_PRECISION ?? 'fp32'])
    : undefined
  trainStep()
  if (interleaved) await interleaved.next() // ready: its warm-up step is done
  const peakReset = resetPeakRss()
  if (onCuda) benchAddon()?.cudaResetPeakMemoryStats()
  const times: number[] = []
  const rounds: string[] = []
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now()
    trainStep()
    times.push((performance.now() - t0) / 1000)
    if (interleaved) {
      const reply = await interleaved.request('train')
      const r = reply.train_s as number
      const adamw = typeof reply.optimizer_s === 'number' ? `; AdamW ${optimizerS.toFixed(2)} vs ${reply.optimizer_s.toFixed(2)} s` : ''
      rounds.push(`${times[i]!.toFixed(2)} vs ${r.toFixed(2)} s (${(r / times[i]!).toFixed(2)}x${adamw})`)
    }
  }
  const trainS = median(times)
  const trainPeak = peakReset ? peakRss() : undefined
  const trainCuda = cudaPeaks()
  if (profile) await profileStep('one training step', trainStep)
  if (profile && interleaved) console.log(`  PyTorch's autograd profile of one training step:\n${(await interleaved.request('profile')).profile}`)
  const tokens = nq * QUERY_LEN + np * PASSAGE_LEN
  const eb = batchOf(encRows, PASSAGE_LEN, vocab, 3)
  const encodeOnce = () => {
    const e = tf.tidy(() => clsEmbeddings(enc.forward(eb).lastHiddenState))
    e.dataSync()
    e.dispose()
  }
  encodeOnce()
  let encodeS = 0
  for (let i = 0; i < 2; i++) {
    const t0 = performance.now()
    encodeOnce()
    const ours = (performance.now() - t0) / 1000
    encodeS += ours
    if (interleaved) {
      const r = (await interleaved.request('encode')).encode_s as number
      rounds.push(`encode ${ours.toFixed(2)} vs ${r.toFixed(2)} s (${(r / ours).toFixed(2)}x)`)
    }
  }
  const encodeTps = (2 * encRows * PASSAGE_LEN) / encodeS
  if (profile) await profileStep(`one encoding batch (${encRows} x ${PASSAGE_LEN})`, encodeOnce)
  // The reference runs next on the same GPU: hand back what this process's allocator caches.
  if (!interleaved && onCuda) benchAddon()?.cudaEmptyCache()
  const ref = interleaved ? ((await interleaved.request('done')) as Record<string, number>) : pytorch(py, refArgs)
  if (interleaved) console.log(`  alternating rounds, codiemb vs PyTorch: ${rounds.join('; ')}`)
  const fused = ops.fusedKernelsActive() ? 'fused kernels active' : 'composite ops'
  console.log(`process ids (for per-process device memory): codiemb ${process.pid}, PyTorch ${typeof ref === 'string' ? 'n/a' : ref.pid}`)
  console.log(`IR train step, ${size.name}, ${nq}q x ${QUERY_LEN} + ${np}p x ${PASSAGE_LEN} tokens (${fused}): codiemb torch ${trainS.toFixed(2)} s/step = ${(tokens / trainS).toFixed(0)} tokens/s, peak RSS ${gb(trainPeak)}`)
  if (trainCuda) console.log(`  codiemb CUDA allocator peak over the training steps: allocated ${gb(trainCuda.peakAllocated)}, reserved ${gb(trainCuda.peakReserved)}`)
  console.log(`encoding, ${size.name}, ${encRows} x ${PASSAGE_LEN} tokens: codiemb torch ${encodeTps.toFixed(0)} tokens/s`)
  if (typeof ref === 'string') console.log(`  PyTorch: ${ref}`)
  else {
    const cuda = ref.cuda_peak_allocated_bytes ? ` (CUDA allocator peak: allocated ${gb(ref.cuda_peak_allocated_bytes)}, reserved ${gb(ref.cuda_peak_reserved_bytes)})` : ''
    console.log(`  PyTorch ${ref.torch} (${ref.threads} threads, ${ref.attention} attention${ref.checkpoint ? ', checkpointed layers' : ''}): train ${ref.train_step_s!.toFixed(2)} s/step = ${ref.train_tokens_per_s!.toFixed(0)} tokens/s, peak RSS ${gb(ref.train_peak_rss_bytes)}${cuda}; encode ${ref.encode_tokens_per_s!.toFixed(0)} tokens/s`)
    // On a GPU the like-for-like figure is the caching allocator's reserved peak (the device memory a
    // process holds, less the CUDA context); on the CPU, peak resident memory.
    const memRatio = trainCuda && ref.cuda_peak_reserved_bytes
      ? `, peak device memory (allocator reserved) ${(trainCuda.peakReserved / ref.cuda_peak_reserved_bytes).toFixed(2)}x, allocated ${(trainCuda.peakAllocated / ref.cuda_peak_allocated_bytes!).toFixed(2)}x (target <= 1.1)`
      : trainPeak !== undefined && ref.train_peak_rss_bytes ? `, peak memory ${(trainPeak / ref.train_peak_rss_bytes).toFixed(2)}x (target <= 1.1)` : ''
    console.log(`  ratio codiemb/PyTorch: training ${(ref.train_step_s! / trainS).toFixed(2)}x, encoding ${(encodeTps / ref.encode_tokens_per_s!).toFixed(2)}x (targets >= 1.0)${memRatio}`)
  }
  ir.dispose()
  enc.dispose()
}

async function main(): Promise<void> {
  if (!existsSync(torchAddonPath())) {
    console.log(`torch bench: skipped: the addon is not built (${torchAddonPath()}); run npm run build:torch`)
    return
  }
  await import('@tensorflow/tfjs-backend-cpu')
  const {registerTorchBackend} = await import('../src/tensor/torch/index.js')
  registerTorchBackend({device: process.env.CODIEMB_DEVICE ?? 'cpu', threads, precision: (process.env.CODIEMB_PRECISION as 'fp32' | 'tf32') ?? 'fp32'})
  await tf.setBackend('torch')
  tf.env().set('PROD', true)
  const py = python()
  const info = (await import('../src/tensor/torch/addon.js')).loadTorchAddon().info()
  console.log(`# torch backend bench: libtorch ${info.version}, device ${process.env.CODIEMB_DEVICE ?? 'cpu'} ${info.cudaDeviceNames.join(', ')}, precision ${process.env.CODIEMB_PRECISION ?? 'fp32'}, ${threads} threads`)
  await micro(py)
  for (const key of (process.env.CODIEMB_BENCH_MODELS ?? 'minilm,bert-base,minilm-512').split(',')) {
    const size = SIZES[key.trim()]
    if (!size) throw new Error(`unknown CODIEMB_BENCH_MODELS entry "${key}" (known: ${Object.keys(SIZES).join(', ')})`)
    await irStep(size, py)
  }
}

await main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
