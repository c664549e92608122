/**
 * Builds small real checkpoints for the merge tests from ../shared's bert-tiny: the base is
 * bert-tiny itself (plus an int64 position-ids buffer, as transformers checkpoints often carry);
 * "fine-tuned" checkpoints are copies whose float tensors are moved by a seeded perturbation, laid
 * out as sentence-transformers checkpoints (the st-bert-tiny-cls fixture's modules.json, pooling
 * config and prompts).
 */
import {copyFileSync, cpSync, mkdirSync, mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {openSafetensors, type TensorData} from '../../src/io/safetensors.js'
import {writeSafetensors} from '../../src/io/safetensors-stream.js'

export type Tensors = Map<string, {shape: number[]; data: TensorData}>

export async function readTensors(dir: string): Promise<Tensors> {
  const f = await openSafetensors(dir)
  const out: Tensors = new Map()
  for (const t of f.tensors()) {
    const r = await f.read(t.name)
    out.set(t.name, {shape: r.shape, data: r.data instanceof Float32Array ? r.data.slice() : r.data})
  }
  await f.close()
  return out
}

/** bert-tiny's tensors plus `embeddings.position_ids` (I64 0..127). */
export async function baseTensors(sharedModels: string): Promise<Tensors> {
  const t = await readTensors(join(sharedModels, 'bert-tiny', 'model'))
  t.set('embeddings.position_ids', {shape: [1, 128], data: BigInt64Array.from({length: 128}, (_, i) => BigInt(i))})
  return t
}

/** Deterministic values in [-1, 1). */
export function noise(n: number, seed: number): Float32Array {
  const out = new Float32Array(n)
  let s = (seed * 2654435761) | 0
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) | 0
    out[i] = ((s >>> 8) / 16777216) * 2 - 1
  }
  return out
}

/** base + delta(name) for every float tensor; non-float tensors replaced by `ints` when given. */
export function perturbed(base: Tensors, delta: (name: string, n: number) => Float32Array, ints?: (name: string, d: TensorData) => TensorData): Tensors {
  const out: Tensors = new Map()
  for (const [name, t] of base) {
    if (t.data instanceof Float32Array) {
      const d = delta(name, t.data.length)
      out.set(name, {shape: t.shape, data: t.data.map((x, i) => x + d[i]!)})
    } else out.set(name, {shape: t.shape, data: ints ? ints(name, t.data) : t.data})
  }
  return out
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `codiemb-${prefix}-`))
}

/**
 * Writes a checkpoint directory: weights, bert-tiny's tokenizer and config, and (when
 * `sentenceTransformers`) st-bert-tiny-cls's modules.json, pooling/normalize configs and prompts.
 */
export async function writeCheckpoint(sharedModels: string, dir: string, tensors: Tensors, sentenceTransformers = true): Promise<string> {
  mkdirSync(dir, {recursive: true})
  await writeSafetensors(join(dir, 'model.safetensors'), [...tensors].map(([name, t]) => ({name, shape: t.shape, data: t.data})), {format: 'pt'})
  const bert = join(sharedModels, 'bert-tiny', 'model')
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt']) copyFileSync(join(bert, f), join(dir, f))
  if (sentenceTransformers) {
    const st = join(sharedModels, 'st-bert-tiny-cls', 'model')
    for (const f of ['modules.json', 'sentence_bert_config.json', 'config_sentence_transformers.json']) copyFileSync(join(st, f), join(dir, f))
    cpSync(join(st, '1_Pooling'), join(dir, '1_Pooling'), {recursive: true})
    cpSync(join(st, '2_Normalize'), join(dir, '2_Normalize'), {recursive: true})
  }
  return dir
}
