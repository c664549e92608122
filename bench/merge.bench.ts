/**
 * Merge benchmark: a bert-base-sized model (12 layers × 768 hidden, 3072 intermediate, 30522-token
 * vocabulary: ~110M float32 parameters, ~440 MB per checkpoint) — a base and three "fine-tuned"
 * checkpoints of random weights are generated in the temp directory (streamed, so generating them
 * costs little memory), then merged with `delta` (and any methods in BENCH_MERGE_METHODS) in a
 * child process that reports its wall time and peak RSS. The streaming engine should peak near
 * (K + 2) × the largest tensor plus Node's baseline, far below K × the model.
 *
 * Env: BENCH_MERGE_METHODS (comma list, default "delta"), BENCH_MERGE_LAYERS (default 12),
 * BENCH_MERGE_KEEP=1 keeps the generated files.
 */
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {SafetensorsStreamWriter, type PlannedTensor} from '../src/io/safetensors-stream.js'
import {builtinRegistry} from '../src/builtins.js'
const BUILTINS = await builtinRegistry()

const K = 3
const HIDDEN = 768
const INTERMEDIATE = 3072
const VOCAB = 30522
const MAX_POSITIONS = 512

function bertBasePlan(layers: number): PlannedTensor[] {
  const f = (name: string, ...shape: number[]): PlannedTensor => ({name, dtype: 'F32', shape})
  const plan: PlannedTensor[] = [
    f('embeddings.word_embeddings.weight', VOCAB, HIDDEN),
    f('embeddings.position_embeddings.weight', MAX_POSITIONS, HIDDEN),
    f('embeddings.token_type_embeddings.weight', 2, HIDDEN),
    f('embeddings.LayerNorm.weight', HIDDEN),
    f('embeddings.LayerNorm.bias', HIDDEN),
    {name: 'embeddings.position_ids', dtype: 'I64', shape: [1, MAX_POSITIONS]},
  ]
  for (let l = 0; l < layers; l++) {
    const p = `encoder.layer.${l}.`
    for (const m of ['query', 'key', 'value']) plan.push(f(`${p}attention.self.${m}.weight`, HIDDEN, HIDDEN), f(`${p}attention.self.${m}.bias`, HIDDEN))
    plan.push(
      f(`${p}attention.output.dense.weight`, HIDDEN, HIDDEN), f(`${p}attention.output.dense.bias`, HIDDEN),
      f(`${p}attention.output.LayerNorm.weight`, HIDDEN), f(`${p}attention.output.LayerNorm.bias`, HIDDEN),
      f(`${p}intermediate.dense.weight`, INTERMEDIATE, HIDDEN), f(`${p}intermediate.dense.bias`, INTERMEDIATE),
      f(`${p}output.dense.weight`, HIDDEN, INTERMEDIATE), f(`${p}output.dense.bias`, HIDDEN),
      f(`${p}output.LayerNorm.weight`, HIDDEN), f(`${p}output.LayerNorm.bias`, HIDDEN),
    )
  }
  plan.push(f('pooler.dense.weight', HIDDEN, HIDDEN), f('pooler.dense.bias', HIDDEN))
  return plan
}

/** Fills `out` with base values (seed 0) plus, for a checkpoint, a small seeded delta. */
function fill(out: Float32Array, tensorIndex: number, checkpoint: number): void {
  let s = (tensorIndex * 7919 + 17) | 0
  let t = (tensorIndex * 104729 + checkpoint * 15485863) | 0
  const scale = 0.001 * (checkpoint + 1)
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) | 0
    let v = ((s >>> 8) / 16777216 - 0.5) * 0.04
    if (checkpoint >= 0) {
      t = (Math.imul(t, 22695477) + 1) | 0
      v += ((t >>> 8) / 16777216 - 0.5) * scale
    }
    out[i] = v
  }
}

async function writeModel(dir: string, plan: PlannedTensor[], checkpoint: number): Promise<void> {
  mkdirSync(dir, {recursive: true})
  writeFileSync(join(dir, 'config.json'), JSON.stringify({model_type: 'bert', hidden_size: HIDDEN, num_hidden_layers: (plan.length - 8) / 16}))
  const w = await SafetensorsStreamWriter.create(join(dir, 'model.safetensors'), plan, {format: 'pt'})
  for (const [i, t] of plan.entries()) {
    const n = t.shape.reduce((a, b) => a * b, 1)
    if (t.dtype === 'I64') await w.write(t.name, BigInt64Array.from({length: n}, (_, j) => BigInt(j)))
    else {
      const data = new Float32Array(n)
      fill(data, i, checkpoint)
      await w.write(t.name, data)
    }
  }
  await w.finish()
}

async function child(): Promise<void> {
  const [method, base, out, ...checkpoints] = process.argv.slice(3)
  const {mergeCheckpoints} = await import('../src/merge/engine.js')
  let peak = 0
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20)
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  const report = await mergeCheckpoints({registry: BUILTINS, method, base, checkpoints, out: out!})
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  const cpuSeconds = (cpu.user + cpu.system) / 1e6
  clearInterval(sampler)
  const maxRss = process.resourceUsage().maxRSS * 1024
  console.log(JSON.stringify({seconds, cpuSeconds, maxRss, sampledPeak: peak, parameters: report.summary.parameters, meanWeights: report.summary.meanWeights}))
}

async function main(): Promise<void> {
  const layers = Number(process.env.BENCH_MERGE_LAYERS ?? 12)
  const methods = (process.env.BENCH_MERGE_METHODS ?? 'delta').split(',').map((m) => m.trim()).filter(Boolean)
  const plan = bertBasePlan(layers)
  const floatParams = plan.filter((t) => t.dtype === 'F32').reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0)
  const largest = Math.max(...plan.map((t) => t.shape.reduce((a, b) => a * b, 1))) * 4
  const modelBytes = floatParams * 4
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-merge-bench-'))
  const MB = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`
  try {
    const t0 = performance.now()
    await writeModel(join(dir, 'base'), plan, -1)
    for (let k = 0; k < K; k++) await writeModel(join(dir, `ckpt${k + 1}`), plan, k)
    console.log(
      `generated base + ${K} checkpoints: ${layers} layers × ${HIDDEN}, ${(floatParams / 1e6).toFixed(1)}M parameters, ${MB(modelBytes)} each, ` +
        `largest tensor ${MB(largest)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
    )
    console.log(`reference sizes: K × model = ${MB(K * modelBytes)}; (K + 2) × largest tensor = ${MB((K + 2) * largest)}`)
    const self = fileURLToPath(import.meta.url)
    for (const method of methods) {
      const out = join(dir, `merged-${method}`)
      const r = spawnSync(process.execPath, [self, '--child', method, join(dir, 'base'), out, ...Array.from({length: K}, (_, k) => join(dir, `ckpt${k + 1}`))], {encoding: 'utf8'})
      if (r.status !== 0) throw new Error(`merge child failed (${r.status}): ${r.stderr}`)
      const m = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {seconds: number; cpuSeconds: number; maxRss: number; meanWeights: number[]}
      console.log(
        `merge ${method.padEnd(15)} ${K} checkpoints: ${m.seconds.toFixed(1)} s wall, ${m.cpuSeconds.toFixed(1)} s CPU (hashing included), ` +
          `load average ${loadavg()[0]!.toFixed(1)}; peak RSS ${MB(m.maxRss)} = ${(m.maxRss / (K * modelBytes)).toFixed(2)} × (K × model), ${(m.maxRss / largest).toFixed(1)} × largest tensor; ` +
          `mean weights ${m.meanWeights.map((w) => w.toFixed(3)).join('/')}`,
      )
      rmSync(out, {recursive: true, force: true})
    }
  } finally {
    if (process.env.BENCH_MERGE_KEEP) console.log(`kept ${dir}`)
    else rmSync(dir, {recursive: true, force: true})
  }
}

if (process.argv[2] === '--child') await child()
else await main()
