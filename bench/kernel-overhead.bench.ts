/**
 * Host (CPU-side) overhead per kernel on the torch backend, the cost that bounds a small model's
 * training step on a GPU (issue 15: MiniLM in tf32 ran at 0.75x PyTorch on an H200, about 15 us per
 * tfjs kernel there against about 1.4 us per raw ATen call). On tensors of 4 elements, so the
 * figures are bookkeeping, not arithmetic:
 *  1. one ATen call through the addon (aten::add of two [4] tensors, result released);
 *  2. one tfjs kernel on the torch backend (tf.add of the same tensors, result disposed);
 *  3. a small op chain in a tidy (tf.tidy(() => tf.add(tf.mul(x, y), x)), its result disposed: two
 *     kernels; a loop that does not dispose what tidy returns keeps every result alive and times its
 *     growing memory instead);
 *  4. PyTorch's eager equivalents of 1-3 (torch.add; torch.mul then torch.add), for scale;
 *  5. a host-bound training step: MiniLM's layer structure (6 layers, so the same kernel calls
 *     per step) at hidden size 64 (2 heads, intermediate 256) on a tiny batch (1 query + 5 passages x
 *     4 tokens; InfoNCE, AdamW as bench/torch.bench.ts), so that arithmetic is small and the step is
 *     mostly host time, as a MiniLM step is on a GPU. On a CPU MiniLM's own width (384) keeps the step
 *     bound by its weight gradients even at 4 tokens (CODIEMB_BENCH_HIDDEN=384 runs it). Its kernel
 *     count and seconds, forward+backward apart from AdamW, alternating rounds with PyTorch's step on
 *     the same model and batch (bench/torch_reference.py --interleave 1). Needs the encoder and
 *     ../shared (a tokenizer to build the model), skipped with the reason otherwise.
 * The micro cases alternate within each of CODIEMB_BENCH_ROUNDS rounds (default 10), so a load change
 * hits them alike; each prints its best and median round.
 * Environment: CODIEMB_TORCH_THREADS (default: all cores), CODIEMB_BENCH_ROUNDS, CODIEMB_BENCH_STEPS
 * (default 10), CODIEMB_BENCH_QUERIES (default 1), CODIEMB_BENCH_SEQ (tokens per query and passage,
 * default 4), CODIEMB_BENCH_HIDDEN (default 64; heads = hidden / 32, intermediate = 4 x hidden), CODIEMB_BENCH_PROFILE=1 (the step's per-kernel times), CODIEMB_PYTHON (a python with torch; `none`: no PyTorch side).
 * Run: npm run build && node dist/bench/kernel-overhead.bench.js   (or: npm run bench -- kernel-overhead)
 */
import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {availableParallelism, loadavg} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import * as tf from '@tensorflow/tfjs-core'
import {torchAddonPath} from '../src/tensor/backends/torch.js'
import {InterleavedReference, irTrainStep, median, python} from './ir-step.js'

const root = (() => {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json')) || dir.endsWith('dist')) dir = dirname(dir)
  return dir
})()
const threads = Number(process.env.CODIEMB_TORCH_THREADS) || availableParallelism()
const rounds = Number(process.env.CODIEMB_BENCH_ROUNDS) || 10
const steps = Number(process.env.CODIEMB_BENCH_STEPS) || 10

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ')

/** Microseconds per iteration of `fn` over `n` iterations. */
function usPer(n: number, fn: () => void): number {
  const t0 = performance.now()
  for (let i = 0; i < n; i++) fn()
  return ((performance.now() - t0) / n) * 1000
}

async function micro(py: string | undefined): Promise<void> {
  const b = tf.backend() as unknown as import('../src/tensor/torch/backend.js').TorchBackend
  const addon = b.addon
  const x = tf.tensor1d([1, 2, 3, 4])
  const y = tf.tensor1d([5, 6, 7, 8])
  const hx = b.handleOf(x)
  const hy = b.handleOf(y)
  const add = addon.op('aten::add', 'Tensor')
  const N = 20_000
  const cases: Record<string, () => number> = {
    raw: () => usPer(N, () => addon.release(add(hx, hy))),
    kernel: () => usPer(N, () => tf.add(x, y).dispose()),
    chain: () => usPer(N, () => tf.tidy(() => tf.add(tf.mul(x, y), x)).dispose()),
  }
  const got: Record<string, number[]> = {raw: [], kernel: [], chain: []}
  for (const f of Object.values(cases)) f() // warm-up
  for (let r = 0; r < rounds; r++) for (const [k, f] of Object.entries(cases)) got[k]!.push(f())
  tf.dispose([x, y])
  // The best round is the least disturbed by other processes; the median shows the spread.
  const fig = (k: string) => `best ${Math.min(...got[k]!).toFixed(2)} us, median ${median(got[k]!).toFixed(2)} us`
  console.log(`per call, ${rounds} alternating rounds of ${N} calls (load average ${load()}):`)
  console.log(`  one ATen call through the addon (aten::add, [4] + [4]):    ${fig('raw')}`)
  console.log(`  one tfjs kernel on the torch backend (tf.add, disposed):    ${fig('kernel')}`)
  console.log(`  tf.tidy(() => tf.add(tf.mul(x, y), x)).dispose(), two kernels: ${fig('chain')}; ${(Math.min(...got.chain!) / 2).toFixed(2)} us per kernel`)
  if (!py) return console.log('  PyTorch: no python with torch (apt-get install python3-torch, or set CODIEMB_PYTHON)')
  const script = [
    'import torch, time', 'torch.set_num_threads(' + threads + ')', 'x = torch.tensor([1., 2, 3, 4]); y = torch.tensor([5., 6, 7, 8]); N = ' + N,
    'def us(f):', '    t = time.perf_counter()', '    for _ in range(N): f()', '    return (time.perf_counter() - t) / N * 1e6',
    'add = lambda: torch.add(x, y)', 'chain = lambda: torch.add(torch.mul(x, y), x)', 'us(add); us(chain)',
    'a, c = [], []', `for _ in range(${rounds}): a.append(us(add)); c.append(us(chain))`,
    'm = lambda v: sorted(v)[len(v) // 2]', 'print(f"{m(a):.2f} {m(c):.2f}")',
  ].join('\n')
  const r = spawnSync(py, ['-c', script], {encoding: 'utf8'})
  if (r.status !== 0) return console.log(`  PyTorch micro failed: ${r.stderr.trim().split('\n').pop()}`)
  const [pa, pc] = r.stdout.trim().split(' ')
  console.log(`  PyTorch eager (python3), same tensors: torch.add ${pa} us; torch.add(torch.mul(x, y), x) ${pc} us`)
}

async function hostBoundStep(py: string | undefined): Promise<void> {
  const tokenizerDir = join(process.env.CODIEMB_SHARED || join(root, '..', 'shared'), 'fixtures', 'models', 'bert-tiny', 'model')
  if (!existsSync(tokenizerDir)) return console.log(`host-bound step: skipped: ../shared is absent (needs ${tokenizerDir})`)
  const {initRandomEncoder} = await import(pathToFileURL(join(root, 'dist', 'src', 'model', 'encoder.js')).href)
  await import('../src/tensor/gradients.js')
  const ops = await import('../src/tensor/ops.js')
  const {variableGrads} = await import('../src/tensor/backprop.js')
  const {builtinRegistry} = await import('../src/builtins.js')
  const hidden = Number(process.env.CODIEMB_BENCH_HIDDEN) || 64
  const [layers, heads, intermediate] = [6, Math.max(1, Math.round(hidden / 32)), 4 * hidden]
  const enc = await initRandomEncoder({registry: await builtinRegistry(), arch: 'bert', tokenizerDir, layers, hidden, heads, intermediate, seed: 1})
  const vocab = enc.config.vocab_size as number
  const nq = Number(process.env.CODIEMB_BENCH_QUERIES) || 1
  const seq = Number(process.env.CODIEMB_BENCH_SEQ) || 4
  const PER_QUERY = 5
  const np = nq * PER_QUERY
  const ir = irTrainStep(enc, ops, variableGrads, {queries: nq, perQuery: PER_QUERY, queryLen: seq, passageLen: seq})
  let fwdBwdS = 0
  const trainStep = () => {
    fwdBwdS = ir.step().fwdBwdS
  }
  trainStep()
  const profile = await tf.profile(() => void trainStep())
  const kernels = profile.kernels.length
  if (process.env.CODIEMB_BENCH_PROFILE === '1') {
    // Per-kernel time of one step (tf.profile with the backend's timer): what is arithmetic, not bookkeeping.
    const by = new Map<string, {ms: number; calls: number}>()
    for (const k of profile.kernels) {
      const e = by.get(k.name) ?? {ms: 0, calls: 0}
      e.ms += Number(k.kernelTimeMs) || 0
      e.calls++
      by.set(k.name, e)
    }
    for (const [name, e] of [...by].sort((a, b) => b[1].ms - a[1].ms).slice(0, 16)) console.log(`    ${name.padEnd(28)} ${e.ms.toFixed(1).padStart(8)} ms ${String(e.calls).padStart(5)} calls`)
  }
  const refArgs = {layers, hidden, heads, intermediate, queries: nq, 'query-len': seq, 'passages-per-query': PER_QUERY, 'passage-len': seq, steps, vocab,
    'encode-batch': 1, 'encode-batches': 1, interleave: 1}
  const ref = py
    ? new InterleavedReference(py, [join(root, 'bench', 'torch_reference.py'), ...Object.entries(refArgs).flatMap(([k, v]) => [`--${k}`, String(v)]),
      '--threads', String(threads), '--device', 'cpu'])
    : undefined
  await ref?.next() // ready: its model is built and warmed up
  const ours: number[] = []
  const oursFwdBwd: number[] = []
  const theirs: number[] = []
  const theirsFwdBwd: number[] = []
  const loadBefore = load()
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now()
    trainStep()
    ours.push((performance.now() - t0) / 1000)
    oursFwdBwd.push(fwdBwdS)
    if (ref) {
      const r = await ref.request('train')
      theirs.push(r.train_s)
      theirsFwdBwd.push(r.train_s - (r.optimizer_s ?? 0))
    }
  }
  ref?.close()
  const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`
  console.log(`host-bound training step, ${layers} layers x ${hidden} (MiniLM's layer count), ${nq}q + ${np}p x ${seq} tokens, ${threads} threads (load average ${loadBefore} -> ${load()}):`)
  console.log(`  codiemb torch: ${ms(median(ours))} per step (forward+backward ${ms(median(oursFwdBwd))}, AdamW the rest); ${kernels} tfjs kernel calls per step (tf.profile's count)`)
  console.log(`  forward+backward per kernel call: ${((median(oursFwdBwd) / kernels) * 1e6).toFixed(1)} us (kernel work included)`)
  if (!ref) return console.log('  PyTorch: no python with torch (apt-get install python3-torch, or set CODIEMB_PYTHON)')
  console.log(`  PyTorch: ${ms(median(theirs))} per step (forward+backward ${ms(median(theirsFwdBwd))})`)
  console.log(`  ratio codiemb/PyTorch (PyTorch's time / ours): step ${(median(theirs) / median(ours)).toFixed(2)}x, forward+backward ${(median(theirsFwdBwd) / median(oursFwdBwd)).toFixed(2)}x; rounds ${ours.map((o, i) => (theirs[i]! / o).toFixed(2)).join(' ')}`)
  ir.dispose()
  enc.dispose()
}

async function main(): Promise<void> {
  if (!existsSync(torchAddonPath())) return console.log(`kernel-overhead bench: skipped: the addon is not built (${torchAddonPath()}); run npm run build:torch`)
  const {registerTorchBackend} = await import('../src/tensor/torch/index.js')
  registerTorchBackend({device: 'cpu', threads})
  await tf.setBackend('torch')
  tf.env().set('PROD', true)
  const py = python()
  console.log(`# kernel-overhead bench: torch backend on the CPU, ${threads} threads, Node ${process.version}`)
  await micro(py)
  await hostBoundStep(py)
}

await main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
