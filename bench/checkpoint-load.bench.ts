/**
 * Checkpoint-load memory benchmark: a decoder (Qwen3 layout) of random weights, about 313M
 * parameters (24 layers × 1024 hidden, 2816 intermediate, 16 query / 8 key-value heads of 64,
 * 32000-token vocabulary: 1.25 GB as F32, 0.63 GB as BF16), is generated in the temp directory
 * (streamed) as a Hugging Face sharded checkpoint (model.safetensors.index.json + 3 shards) and as
 * one model.safetensors, then loaded with loadEncoder in a child process per case, which reports its
 * RSS before the load, its peak RSS (getrusage maxRSS) through the load, and after one encode.
 *
 * Loading streams tensor by tensor (src/model/load-weights.ts), so the peak over the baseline should
 * be the weights once (as the backend keeps them) plus about one tensor in transit — not twice the
 * checkpoint. Cases: cpu F32 (sharded and single file), cpu BF16 (widened to float32: 2 × the file),
 * and, when the torch addon is built, torch F32 and torch --precision bf16 on the BF16 checkpoint
 * (kept bfloat16: 1 × the file).
 *
 * Env: BENCH_LOAD_LAYERS (default 24), BENCH_LOAD_CASES (comma list of case names, default all),
 * BENCH_LOAD_KEEP=1 keeps the generated files. Needs ~2 GB of free memory per case and ~3 GB of
 * disk; on a shared machine run it under `flock /tmp/codiemb-bigmem.lock`.
 */
import {spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {SafetensorsStreamWriter, type PlannedTensor} from '../src/io/safetensors-stream.js'
import type {SafetensorsDtype} from '../src/io/safetensors-dtypes.js'

const HIDDEN = 1024
const INTERMEDIATE = 2816
const HEADS = 16
const KV_HEADS = 8
const HEAD_DIM = 64
const VOCAB = 32000
const SHARDS = 3

function config(layers: number): Record<string, unknown> {
  return {
    architectures: ['Qwen3Model'], model_type: 'qwen3', hidden_size: HIDDEN, intermediate_size: INTERMEDIATE,
    num_attention_heads: HEADS, num_key_value_heads: KV_HEADS, head_dim: HEAD_DIM, num_hidden_layers: layers,
    vocab_size: VOCAB, rms_norm_eps: 1e-6, rope_theta: 1000000, max_position_embeddings: 512, tie_word_embeddings: true,
    hidden_act: 'silu', pad_token_id: 1, is_causal: true,
  }
}

function plan(layers: number, dtype: SafetensorsDtype): PlannedTensor[] {
  const f = (name: string, ...shape: number[]): PlannedTensor => ({name, dtype, shape})
  const out: PlannedTensor[] = [f('embed_tokens.weight', VOCAB, HIDDEN)]
  for (let l = 0; l < layers; l++) {
    const p = `layers.${l}.`
    out.push(
      f(`${p}input_layernorm.weight`, HIDDEN),
      f(`${p}self_attn.q_proj.weight`, HEADS * HEAD_DIM, HIDDEN),
      f(`${p}self_attn.k_proj.weight`, KV_HEADS * HEAD_DIM, HIDDEN),
      f(`${p}self_attn.v_proj.weight`, KV_HEADS * HEAD_DIM, HIDDEN),
      f(`${p}self_attn.q_norm.weight`, HEAD_DIM),
      f(`${p}self_attn.k_norm.weight`, HEAD_DIM),
      f(`${p}self_attn.o_proj.weight`, HIDDEN, HEADS * HEAD_DIM),
      f(`${p}post_attention_layernorm.weight`, HIDDEN),
      f(`${p}mlp.gate_proj.weight`, INTERMEDIATE, HIDDEN),
      f(`${p}mlp.up_proj.weight`, INTERMEDIATE, HIDDEN),
      f(`${p}mlp.down_proj.weight`, HIDDEN, INTERMEDIATE),
    )
  }
  out.push(f('norm.weight', HIDDEN))
  return out
}

const count = (t: PlannedTensor) => t.shape.reduce((a, b) => a * b, 1)

/** Seeded small random values (norm weights 1), as a trained model's scale. */
function fill(out: Float32Array, t: PlannedTensor, index: number): void {
  if (t.name.endsWith('norm.weight')) return void out.fill(1)
  let s = (index * 7919 + 17) | 0
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) | 0
    out[i] = ((s >>> 8) / 16777216 - 0.5) * 0.04
  }
}

/** Writes the model folder: config, a tiny tokenizer, and the weights as `shards` files (1: model.safetensors). */
async function writeModel(dir: string, layers: number, dtype: SafetensorsDtype, shards: number): Promise<number> {
  mkdirSync(dir, {recursive: true})
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config(layers)))
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({
    version: '1.0', truncation: null, padding: null,
    added_tokens: [{id: 1, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true}],
    normalizer: null, pre_tokenizer: {type: 'WhitespaceSplit'}, post_processor: null, decoder: null,
    model: {type: 'WordLevel', vocab: {'<unk>': 0, '<|endoftext|>': 1, a: 2, b: 3}, unk_token: '<unk>'},
  }))
  const all = plan(layers, dtype)
  const bytes = all.reduce((a, t) => a + count(t) * (dtype === 'F32' ? 4 : 2), 0)
  const parts: PlannedTensor[][] = [[]]
  let size = 0
  for (const t of all) {
    const b = count(t) * (dtype === 'F32' ? 4 : 2)
    if (shards > 1 && parts.at(-1)!.length > 0 && size + b > bytes / shards) {
      parts.push([])
      size = 0
    }
    parts.at(-1)!.push(t)
    size += b
  }
  const weightMap: Record<string, string> = {}
  let index = 0
  for (const [i, part] of parts.entries()) {
    const file = shards > 1 ? `model-${String(i + 1).padStart(5, '0')}-of-${String(parts.length).padStart(5, '0')}.safetensors` : 'model.safetensors'
    const w = await SafetensorsStreamWriter.create(join(dir, file), part, {format: 'pt'})
    for (const t of part) {
      const data = new Float32Array(count(t))
      fill(data, t, index++)
      await w.write(t.name, data)
      weightMap[t.name] = file
    }
    await w.finish()
  }
  if (shards > 1) writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({metadata: {total_size: bytes}, weight_map: weightMap}))
  return bytes
}

async function child(): Promise<void> {
  const [backend, precision, dir] = process.argv.slice(3) as [string, string, string]
  const {builtinRegistry} = await import('../src/builtins.js')
  const {selectBackend} = await import('../src/tensor/backend.js')
  const {loadEncoder} = await import('../src/model/encoder.js')
  const {tensorStorage} = await import('../src/tensor/storage.js')
  const registry = await builtinRegistry()
  await selectBackend(registry, backend, {precision: precision as 'fp32' | 'bf16'})
  globalThis.gc?.()
  const before = process.memoryUsage().rss
  const t0 = performance.now()
  const enc = await loadEncoder(dir, {registry, trainable: false})
  const seconds = (performance.now() - t0) / 1000
  const peakLoad = process.resourceUsage().maxRSS * 1024
  globalThis.gc?.()
  const afterLoad = process.memoryUsage().rss
  let stored = 0
  const dtypes = new Set<string>()
  for (const v of enc.variables.values()) {
    const s = tensorStorage(v)
    stored += s.bytes
    dtypes.add(s.dtype)
  }
  await enc.encode(['a b a', 'b'])
  const peakEncode = process.resourceUsage().maxRSS * 1024
  enc.dispose()
  console.log(JSON.stringify({before, peakLoad, afterLoad, peakEncode, stored, dtypes: [...dtypes], seconds}))
}

async function main(): Promise<void> {
  const layers = Number(process.env.BENCH_LOAD_LAYERS ?? 24)
  const wanted = process.env.BENCH_LOAD_CASES?.split(',').map((c) => c.trim())
  const torch = existsSync(new URL('../../native/build/Release/codiemb_torch.node', import.meta.url))
  const cases = [
    {name: 'cpu-f32-sharded', backend: 'cpu', precision: 'fp32', model: 'f32-sharded'},
    {name: 'cpu-f32-single', backend: 'cpu', precision: 'fp32', model: 'f32-single'},
    {name: 'cpu-bf16-sharded', backend: 'cpu', precision: 'fp32', model: 'bf16-sharded'},
    ...(torch
      ? [
          {name: 'torch-f32-sharded', backend: 'torch', precision: 'fp32', model: 'f32-sharded'},
          {name: 'torch-bf16-sharded', backend: 'torch', precision: 'bf16', model: 'bf16-sharded'},
        ]
      : []),
  ].filter((c) => !wanted || wanted.includes(c.name))
  const dir = mkdtempSync(join(tmpdir(), 'codiemb-load-bench-'))
  const MB = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`
  try {
    const sizes = new Map<string, number>()
    const largest = Math.max(...plan(layers, 'F32').map(count))
    for (const model of new Set(cases.map((c) => c.model))) {
      const t0 = performance.now()
      const [dtype, layout] = model.split('-') as [string, string]
      sizes.set(model, await writeModel(join(dir, model), layers, dtype === 'f32' ? 'F32' : 'BF16', layout === 'sharded' ? SHARDS : 1))
      console.log(`generated ${model}: ${layers} layers, ${(plan(layers, 'F32').reduce((a, t) => a + count(t), 0) / 1e6).toFixed(0)}M parameters, ${MB(sizes.get(model)!)} (${((performance.now() - t0) / 1000).toFixed(1)} s); largest tensor ${MB(largest * 4)} as float32`)
    }
    const self = fileURLToPath(import.meta.url)
    for (const c of cases) {
      const r = spawnSync(process.execPath, ['--expose-gc', self, '--child', c.backend, c.precision, join(dir, c.model)], {encoding: 'utf8'})
      if (r.status !== 0) throw new Error(`${c.name}: load child failed (${r.status}): ${r.stderr}`)
      const m = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {before: number; peakLoad: number; afterLoad: number; peakEncode: number; stored: number; dtypes: string[]; seconds: number}
      const file = sizes.get(c.model)!
      console.log(
        `${c.name.padEnd(19)} file ${MB(file)}, held ${MB(m.stored)} (${m.dtypes.join('/')}): RSS before ${MB(m.before)}, peak during load ${MB(m.peakLoad)} ` +
          `(+${MB(m.peakLoad - m.before)} = ${((m.peakLoad - m.before) / m.stored).toFixed(2)} × held, ${((m.peakLoad - m.before) / file).toFixed(2)} × file), ` +
          `after load +${MB(m.afterLoad - m.before)}, peak with one encode +${MB(m.peakEncode - m.before)}; ${m.seconds.toFixed(1)} s; load average ${loadavg()[0]!.toFixed(1)}`,
      )
    }
  } finally {
    if (process.env.BENCH_LOAD_KEEP) console.log(`kept ${dir}`)
    else rmSync(dir, {recursive: true, force: true})
  }
}

if (process.argv[2] === '--child') await child()
else await main()
