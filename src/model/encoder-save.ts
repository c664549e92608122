/**
 * Saving an encoder as a checkpoint directory that Hugging Face transformers and
 * sentence-transformers load as is: config.json (keys sorted, `architectures` set to the model's
 * transformers class, dtype the floating tensors' stored precision), model.safetensors (`{"format": "pt"}` metadata), the
 * tokenizer files read when the encoder was loaded (kept in memory: the folder they came from may be
 * gone by the time a resumed run saves, e.g. a pruned checkpoint), the sentence-transformers module files
 * (modules.json, 1_Pooling/, prompts...), and any extra files the caller adds (e.g. trainer state).
 *
 * The directory is assembled beside the target and swapped into place when complete
 * (writeDirectoryAtomic), so a failed or killed save leaves the previous checkpoint intact.
 */
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname, join, resolve, sep} from 'node:path'
import {writeDirectoryAtomic} from '../core/fs-atomic.js'
import {writeOutputDirectory} from '../core/outputs.js'
import {SafetensorsStreamWriter, type PlannedTensor} from '../io/safetensors-stream.js'
import type {SafetensorsDtype, WritableTensorData} from '../io/safetensors-dtypes.js'
import type {HfConfig} from './architecture.js'
import {sentenceTransformersFiles} from './st-layout.js'
import {TOKENIZER_FILES} from './tokenizer/tokenizer.js'

export interface SaveOptions {
  /** Extra files to write into the checkpoint (relative path -> content). */
  extraFiles?: Record<string, string | Uint8Array>
  /** Precision of every floating tensor that has no dtype of its own (default F32). */
  dtype?: 'F32' | 'F16' | 'BF16'
  /**
   * The command saving the model as its output: the directory then gets codiemb's output marker
   * (core/outputs.ts), written last into the staged copy. Training checkpoints inside a checkpoints
   * folder carry none.
   */
  outputOf?: string
}

/** One tensor to save: its values are read when written. */
export interface TensorSource {
  name: string
  shape: readonly number[]
  dtype?: SafetensorsDtype
  read(): WritableTensorData
}

/** config.json's dtype: the precision the floating tensors are stored in, when they share one. */
function configDtype(plan: readonly PlannedTensor[]): string {
  const names: Partial<Record<SafetensorsDtype, string>> = {F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64'}
  const used = new Set(plan.map((t) => names[t.dtype]).filter((x) => x !== undefined))
  return used.size === 1 ? [...used][0]! : 'float32'
}

/**
 * Streams `tensors` into a safetensors file tensor by tensor (src/io/safetensors-stream.ts), so a
 * large model is never copied whole into JS memory; a failure leaves no file behind.
 */
async function writeTensors(path: string, tensors: readonly TensorSource[], plan: readonly PlannedTensor[]): Promise<void> {
  const writer = await SafetensorsStreamWriter.create(path, plan, {format: 'pt'})
  try {
    for (const t of tensors) await writer.write(t.name, t.read())
    await writer.finish()
  } catch (error) {
    await writer.abort()
    throw error
  }
}

/** What a checkpoint directory is written from. */
export interface EncoderCheckpoint {
  config: HfConfig
  /** The transformers class of the architecture (config.json `architectures`). */
  baseClass: string
  /**
   * Every weight by its Hugging Face name: trained parameters and passed-through tensors, each read
   * only when its turn to be written comes (one tensor's values in memory at a time). `dtype` is the
   * stored precision (e.g. the checkpoint's own BF16); floating tensors without one take SaveOptions.dtype.
   */
  tensors: TensorSource[]
  /**
   * A LoRA adapter's adapter_config.json (src/model/lora.ts): then `tensors` are the adapters, written
   * to adapter_model.safetensors, and no config.json is written (the folder is not a full model).
   */
  adapterConfig?: Record<string, unknown>
  /** The tokenizer files (name -> bytes, see readTokenizerFiles), written as they are. */
  tokenizerFiles: ReadonlyMap<string, Uint8Array>
  /** The sentence-transformers settings (pooling, normalisation, prompts, maximum length...). */
  sentenceTransformers: Parameters<typeof sentenceTransformersFiles>[0]
}

/** The tokenizer files of a directory (TOKENIZER_FILES that exist), read into memory for a later save. */
export function readTokenizerFiles(dir: string): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>()
  for (const f of TOKENIZER_FILES) {
    const p = join(dir, f)
    if (existsSync(p)) files.set(f, readFileSync(p))
  }
  return files
}

/** An object with its keys in sorted order (stable config.json and fingerprints). */
export function sortKeys(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)))
}

/** Writes `checkpoint` to the directory `dir`, replacing an existing one atomically. */
export async function saveEncoderCheckpoint(dir: string, checkpoint: EncoderCheckpoint, options: SaveOptions = {}): Promise<void> {
  const fill = async (staging: string): Promise<void> => {
    const plan: PlannedTensor[] = checkpoint.tensors.map((t) => ({name: t.name, shape: t.shape, dtype: t.dtype ?? options.dtype ?? 'F32'}))
    if (checkpoint.adapterConfig) {
      writeFileSync(join(staging, 'adapter_config.json'), JSON.stringify(checkpoint.adapterConfig, null, 2) + '\n')
      await writeTensors(join(staging, 'adapter_model.safetensors'), checkpoint.tensors, plan)
    } else {
      const config: Record<string, unknown> = {...checkpoint.config, architectures: [checkpoint.baseClass]}
      config.dtype = configDtype(plan)
      delete config.torch_dtype
      writeFileSync(join(staging, 'config.json'), JSON.stringify(sortKeys(config), null, 2) + '\n')
      await writeTensors(join(staging, 'model.safetensors'), checkpoint.tensors, plan)
    }
    for (const [f, bytes] of checkpoint.tokenizerFiles) writeFileSync(join(staging, f), bytes)
    const stFiles = sentenceTransformersFiles(checkpoint.sentenceTransformers)
    for (const [rel, content] of Object.entries({...stFiles, ...(options.extraFiles ?? {})})) {
      const p = join(staging, rel)
      if (!resolve(p).startsWith(staging + sep)) throw new Error(`extra file path escapes the checkpoint: ${rel}`)
      mkdirSync(dirname(p), {recursive: true})
      writeFileSync(p, content)
    }
  }
  if (options.outputOf) await writeOutputDirectory(resolve(dir), 'model', options.outputOf, fill)
  else await writeDirectoryAtomic(resolve(dir), fill)
}
