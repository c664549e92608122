/**
 * Model consistency at load: a checkpoint's config.json, its tensors and its tokenizer must agree
 * before a weight is used, so a mismatch fails at load (exit 2) naming the file, the tensor and what
 * was expected, instead of computing something else (layers the config does not count, silently
 * dropped) or failing at the first batch (a token id past the embedding rows).
 *
 * Every tensor of the checkpoint is accounted for, per architecture (src/model/architecture.ts):
 *
 *   parameter   in `parameterShapes(config)` (after the weight prefix), with exactly that shape;
 *   kept        `passthrough` (e.g. a pooler): not used for embeddings, written back on save;
 *   ignored     `ignoredTensor` gives the reason (index buffers, task heads): neither loaded nor saved;
 *   unexpected  anything else: the load fails, naming the tensors, and saying so when they are
 *               layers past config.json's num_hidden_layers.
 *
 * Kept and ignored tensors are reported in one warning per load. The tokenizer's highest token id
 * (src/model/tokenizer/types.ts `highestId`) and its pad id must be rows of the embedding matrix.
 */
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import type {Registry} from '../registry/registry.js'
import type {EncoderArchitecture, HfConfig} from './architecture.js'
import {openSafetensors, type SafetensorsFile, type TensorInfo} from '../io/safetensors.js'
import {loadTokenizer, type TextTokenizer} from './tokenizer/tokenizer.js'
import {CodiembError} from '../core/errors.js'
import {readJsonFile} from '../core/json-file.js'

/** A checkpoint that cannot be loaded; the message names the file and, where relevant, the tensor. */
export class EncoderLoadError extends CodiembError {
  override name = 'EncoderLoadError'
}

/** Finds the encoder implementation for a model_type. */
export async function architectureFor(modelType: string, registry: Registry, configPath = 'config.json'): Promise<EncoderArchitecture> {
  const entries = registry.list('encoder')
  const entry = entries.find((e) => Array.isArray(e.meta?.modelTypes) && (e.meta!.modelTypes as unknown[]).includes(modelType)) ?? entries.find((e) => e.name === modelType)
  if (!entry) {
    const known = entries.flatMap((e) => (Array.isArray(e.meta?.modelTypes) ? (e.meta!.modelTypes as string[]) : [e.name]))
    throw new EncoderLoadError(`${configPath}: model_type "${modelType}" has no registered encoder (supported: ${known.join(', ') || 'none'})`)
  }
  return (await entry.load()) as EncoderArchitecture
}

/** Reads a model directory's config.json: an object with a model_type string. */
export function readModelConfig(dir: string): HfConfig {
  const path = join(dir, 'config.json')
  if (!existsSync(path)) {
    if (existsSync(join(dir, 'adapter_config.json'))) {
      throw new EncoderLoadError(`${dir}: a LoRA adapter folder (adapter_config.json, no config.json), not a full model: fold it into its base with \`codiemb model fold --adapter ${dir} --out DIR\``)
    }
    throw new EncoderLoadError(`${dir}: no config.json: expected a Hugging Face model directory`)
  }
  const config = readJsonFile(path, (reason) => new EncoderLoadError(`${path}: not valid JSON (${reason})`))
  if (!config || typeof config !== 'object' || typeof (config as HfConfig).model_type !== 'string') {
    throw new EncoderLoadError(`${path}: expected an object with a "model_type" string`)
  }
  return config as HfConfig
}

/** A checkpoint tensor the encoder does not compute with: kept (written back on save) or ignored. */
export interface UnusedTensor {
  /** The name in the checkpoint (with its prefix). */
  name: string
  kept: boolean
  reason: string
}

/** Where each checkpoint tensor goes. */
export interface TensorSelection {
  /** The weight prefix the checkpoint uses ("" or e.g. "bert."). */
  prefix: string
  /** The parameters in `parameterShapes` order: checkpoint name, variable name, shape. */
  parameters: {file: string; name: string; shape: number[]}[]
  unused: UnusedTensor[]
}

const KEPT_REASON = 'kept unchanged and written back on save'

/** Quoted names, at most `max` of them, then how many more. */
function nameList(names: string[], max = 5): string {
  return names.slice(0, max).map((n) => `"${n}"`).join(', ') + (names.length > max ? ` and ${names.length - max} more` : '')
}

/**
 * Layer indices of `names` past the config's num_hidden_layers (HF block names: `layer.N.`,
 * `layers.N.`, `h.N.`, `block(s).N.`), sorted: the usual reason a checkpoint holds tensors its
 * config does not describe.
 */
function layersPastConfig(names: string[], config: HfConfig): number[] {
  const found = new Set<number>()
  for (const name of names) {
    const m = /(?:^|\.)(?:layers?|h|blocks?)\.(\d+)\./.exec(name)
    if (m && Number(m[1]) >= config.num_hidden_layers) found.add(Number(m[1]))
  }
  return [...found].sort((a, b) => a - b)
}

/**
 * Sorts every tensor of `tensors` (a checkpoint's, e.g. `SafetensorsFile.tensors()`) into parameters
 * and unused ones, or throws EncoderLoadError naming `weightsPath`, the tensor and what `configPath`
 * made the architecture expect: a parameter missing or of another shape, or a tensor the
 * architecture neither uses nor deliberately ignores.
 */
export function selectTensors(arch: EncoderArchitecture, config: HfConfig, tensors: TensorInfo[], weightsPath: string, configPath: string): TensorSelection {
  const byName = new Map(tensors.map((t) => [t.name, t]))
  const expected = arch.parameterShapes(config)
  const first = expected[0]?.[0] ?? ''
  const prefix = arch.weightPrefixes.find((p) => byName.has(p + first))
  if (prefix === undefined) {
    const others = arch.weightPrefixes.filter(Boolean).map((p) => `"${p}${first}"`)
    throw new EncoderLoadError(`${weightsPath}: tensor "${first}" is missing${others.length ? ` (also looked for ${others.join(', ')})` : ''}`)
  }
  const parameters: TensorSelection['parameters'] = []
  for (const [name, shape] of expected) {
    const file = prefix + name
    const info = byName.get(file)
    if (!info) throw new EncoderLoadError(`${weightsPath}: tensor "${file}" is missing (expected shape [${shape.join(', ')}] for ${configPath})`)
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new EncoderLoadError(`${weightsPath}: tensor "${file}" has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}] from ${configPath}`)
    }
    parameters.push({file, name, shape})
  }
  const used = new Set(parameters.map((p) => p.file))
  const unused: UnusedTensor[] = []
  const unexpected: string[] = []
  for (const {name} of tensors) {
    if (used.has(name)) continue
    const local = name.startsWith(prefix) ? name.slice(prefix.length) : undefined
    const reason = arch.ignoredTensor?.(local ?? name, config)
    if (local !== undefined && arch.passthrough(local)) unused.push({name, kept: true, reason: KEPT_REASON})
    else if (reason !== undefined) unused.push({name, kept: false, reason})
    else unexpected.push(name)
  }
  if (unexpected.length) {
    const layers = layersPastConfig(unexpected, config)
    const why = layers.length
      ? `${configPath} has num_hidden_layers ${config.num_hidden_layers} but the weights hold layer${layers.length > 1 ? 's' : ''} ${layers.join(', ')}: fix num_hidden_layers or remove those tensors`
      : `neither part of the "${config.model_type}" model that ${configPath} describes nor ignored by its encoder on purpose`
    throw new EncoderLoadError(`${weightsPath}: ${unexpected.length} tensor${unexpected.length > 1 ? 's' : ''} would go unused: ${nameList(unexpected)}; ${why}`)
  }
  return {prefix, parameters, unused}
}

/** The one warning a load gives about unused tensors (undefined when every tensor is a parameter), grouped by reason. */
export function unusedTensorsWarning(weightsPath: string, unused: UnusedTensor[]): string | undefined {
  if (unused.length === 0) return undefined
  const groups = new Map<string, string[]>()
  for (const t of unused) {
    const why = t.kept ? t.reason : `${t.reason}; not loaded`
    groups.set(why, [...(groups.get(why) ?? []), t.name])
  }
  const parts = [...groups].map(([why, names]) => `${nameList(names, 8)} (${why})`)
  return `${weightsPath}: ${unused.length} tensor${unused.length > 1 ? 's' : ''} not used to compute embeddings: ${parts.join('; ')}`
}

/**
 * Checks that every id the tokenizer emits (its highest id, and its pad id) is a row of the
 * embedding matrix: the parameter of shape [vocab_size, hidden_size] (for BERT,
 * embeddings.word_embeddings.weight), whose rows config.json's vocab_size counts.
 */
export function checkVocabulary(tokenizer: TextTokenizer, tokenizerPath: string, config: HfConfig, selection: TensorSelection, weightsPath: string, configPath: string): void {
  const rows = config.vocab_size
  const embedding = selection.parameters.find((p) => p.shape.length === 2 && p.shape[0] === rows && p.shape[1] === config.hidden_size)
  const matrix = embedding ? `the ${rows} rows of tensor "${embedding.file}" in ${weightsPath} (vocab_size ${rows} in ${configPath})` : `vocab_size ${rows} in ${configPath}`
  const {id, token} = tokenizer.highestId
  if (id >= rows) {
    throw new EncoderLoadError(`${tokenizerPath}: token "${token}" has id ${id}, past ${matrix}: the tokenizer needs ${id + 1} rows; use the tokenizer the model was trained with`)
  }
  if (tokenizer.padId >= rows) throw new EncoderLoadError(`${tokenizerPath}: the pad token id ${tokenizer.padId} is past ${matrix}`)
}

/** A model directory whose config, tensors and tokenizer agree; `weights` is open until the caller closes it. */
export interface CheckedModel {
  config: HfConfig
  configPath: string
  arch: EncoderArchitecture
  tokenizer: TextTokenizer
  weights: SafetensorsFile
  selection: TensorSelection
  /** The one warning about unused tensors, when there are any. */
  warning?: string
}

/** Reads a model directory's config, finds its architecture, loads its tokenizer, opens its weights and checks that they agree. */
export async function openCheckedModel(dir: string, registry: Registry, overrides?: Record<string, unknown>): Promise<CheckedModel> {
  const config = {...readModelConfig(dir), ...overrides}
  const configPath = join(dir, 'config.json')
  const arch = await architectureFor(config.model_type, registry, configPath)
  try {
    arch.validateConfig(config)
  } catch (error) {
    throw new EncoderLoadError(`${configPath}: ${(error as Error).message}`)
  }
  const tokenizer = await loadTokenizer(dir, {padTokenId: config.pad_token_id ?? undefined})
  let weights: SafetensorsFile
  try {
    weights = await openSafetensors(dir)
  } catch (error) {
    if (!existsSync(join(dir, 'model.safetensors')) && existsSync(join(dir, 'pytorch_model.bin'))) {
      throw new EncoderLoadError(`${dir}: only pytorch_model.bin found; convert it to safetensors (codiemb reads safetensors only)`)
    }
    throw error
  }
  try {
    const selection = selectTensors(arch, config, weights.tensors(), weights.path, configPath)
    checkVocabulary(tokenizer, join(dir, tokenizer.source), config, selection, weights.path, configPath)
    return {config, configPath, arch, tokenizer, weights, selection, warning: unusedTensorsWarning(weights.path, selection.unused)}
  } catch (error) {
    await weights.close()
    throw error
  }
}

/**
 * Checks a model directory as a load would, without reading any weight, and returns the warning a
 * load would give (none when every tensor is a parameter); throws what the load would throw. For
 * tools that write a checkpoint without loading it (`codiemb merge`).
 */
export async function checkModelDirectory(dir: string, options: {registry: Registry}): Promise<{warnings: string[]}> {
  const model = await openCheckedModel(dir, options.registry)
  await model.weights.close()
  return {warnings: model.warning ? [model.warning] : []}
}
