/**
 * Run as a child process by test/train/memory-estimate.test.ts (argv[2]: JSON {spec, tokenizerDir,
 * variants: [gradientCheckpointing, …], precision?}): on the torch backend (at `precision`, fp32 by default), the peak resident memory of one
 * training step above the memory resident before it, per variant, printed as one JSON line.
 *
 * The parent sets MALLOC_MMAP_THRESHOLD_ so that glibc serves every tensor-sized allocation with its
 * own mapping and returns it to the system when freed: the resident set then follows the live
 * tensors, and its high-water mark (VmHWM, reset through /proc/self/clear_refs) is the step's peak.
 * A forward and backward pass of one query first warms up what is allocated once (thread pools, kernel caches).
 */
import {readFileSync, writeFileSync} from 'node:fs'
import {builtinRegistry} from '../../src/builtins.js'
import {selectBackend} from '../../src/tensor/backend.js'
import {firstBatch, randomEncoder, stepTrainer, tf, type StepSpec} from './step-memory.js'
import type {TorchBackend} from '../../src/tensor/torch/backend.js'

const {spec, tokenizerDir, variants, precision} = JSON.parse(process.argv[2]!) as {spec: StepSpec; tokenizerDir: string; variants: boolean[]; precision?: 'fp32' | 'bf16'}
const registry = await builtinRegistry()
await selectBackend(registry, 'torch', {precision: precision ?? 'fp32'})

function status(): {rss: number; hwm: number} {
  const text = readFileSync('/proc/self/status', 'utf8')
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)![1]) * 1024
  return {rss: kb('VmRSS'), hwm: kb('VmHWM')}
}

const encoder = await randomEncoder(spec, registry, tokenizerDir)
const results: {gradientCheckpointing: boolean; rssBefore: number; peakAbove: number; livePeakAbove: number}[] = []
for (const gradientCheckpointing of variants) {
  const trainer = stepTrainer(encoder, spec, gradientCheckpointing)
  // Under bf16 every variant warms up at the full batch: libtorch's CPU bfloat16 products go through
  // oneDNN, which keeps per-shape kernels and scratch buffers from their first use on (measured
  // here: about 60 MiB more resident in a checkpointed step's first run at new shapes).
  if (results.length === 0 || precision === 'bf16') {
    const warm = await trainer.gradientsOf(firstBatch(spec, precision === 'bf16' ? undefined : 1))
    for (const g of warm.grads.values()) g.dispose()
  }
  ;(globalThis as {gc?: () => void}).gc?.()
  writeFileSync('/proc/self/clear_refs', '5')
  const before = status()
  const backend = tf.backend() as unknown as TorchBackend
  const liveBefore = Object.values(backend.liveBytes()).reduce((a, b) => a + b, 0)
  backend.takePeakLiveBytes()
  await trainer.run()
  const after = status()
  // The tensors tfjs saw (views counted in full): what the estimate models, beside the resident peak.
  results.push({gradientCheckpointing, rssBefore: before.rss, peakAbove: after.hwm - before.rss, livePeakAbove: backend.takePeakLiveBytes() - liveBefore})
  trainer.dispose()
}
encoder.dispose()
console.log(JSON.stringify(results))
