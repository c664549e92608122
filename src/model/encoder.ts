/**
 * Encoders: a Hugging Face checkpoint directory (config.json, safetensors weights, tokenizer) plus the
 * optional sentence-transformers files, run by the registry's `encoder` implementation for the
 * config's model_type. Weights live in tf.Variables keyed by their Hugging Face tensor names, so the
 * trainer differentiates `forward` + `pool` with tf.variableGrads and mergers read/write them by name.
 *
 * Defaults follow sentence-transformers: pooling and normalisation from the checkpoint's modules,
 * else mean pooling without normalisation; prompts from config_sentence_transformers.json; the
 * maximum length from sentence_bert_config.json, else tokenizer_config.json model_max_length, capped
 * by the model's positions. Instruction prefixes are excluded from pooling unless the checkpoint's
 * pooling config says include_prompt (a plain Hugging Face checkpoint excludes them, as the CoDiEmb
 * paper does).
 */
import {createHash} from 'node:crypto'
import {existsSync, readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import type {Registry} from '../registry/registry.js'
import type {EncodeProgressEvent} from '../core/events.js'
import type {EncoderArchitecture, HfConfig} from './architecture.js'
import {isPoolingMode, poolHidden, POOLING_MODES, type PoolingMode} from './pooling.js'
import {openSafetensors, type LoadedTensor, type SafetensorsFile} from '../io/safetensors.js'
import {firstNonFiniteIndex} from '../io/finite-values.js'
import type {TensorToWrite} from '../io/safetensors-stream.js'
import {saveEncoderCheckpoint, sortKeys, type SaveOptions} from './encoder-save.js'
import {ModelConfigError, readSentenceTransformersConfig} from './st-layout.js'
import {codePointLength, loadTokenizer, readTokenizerConfig, type TextTokenizer, type TokenBatch} from './tokenizer/tokenizer.js'
import {applyPrompt, literalPrompt, NO_PROMPT, type Prompt} from '../core/prompts.js'
import {CodiembError} from '../core/errors.js'
import {readJsonFile} from '../core/json-file.js'

export type {TokenBatch} from './tokenizer/tokenizer.js'
export type {PoolingMode} from './pooling.js'
export type {SaveOptions} from './encoder-save.js'
export {ModelConfigError} from './st-layout.js'

export interface ForwardResult {
  lastHiddenState: tf.Tensor3D
  /** [0] is the embedding output, [l] the output of layer l (numLayers + 1 tensors). */
  hiddenStates: tf.Tensor3D[]
}

export interface EncodeOptions {
  /** Name of a prompt from the checkpoint's prompts (e.g. "query"). */
  prompt?: string
  /**
   * What goes around every text (overrides `prompt`): a literal instruction prefix, or a template
   * already filled with its instruction (src/core/prompts.ts fillTemplate).
   */
  instruction?: string | Prompt
  batchSize?: number
  maxLength?: number
  normalize?: boolean
  /** Override the checkpoint's pooling for this call. */
  pooling?: PoolingMode
  /** Progress after each batch: texts encoded so far, of all, and their non-padding tokens. */
  onEvent?: (event: EncodeProgressEvent) => void
}

/** What an encoder is and how it turns texts into vectors: the fields of `Encoder`, which the implementation declares once (see TransformerEncoder). */
export interface EncoderFields {
  readonly modelType: string
  readonly config: HfConfig
  readonly numLayers: number
  readonly hiddenSize: number
  pooling: PoolingMode
  normalize: boolean
  /** Whether instruction/prompt tokens take part in pooling (sentence-transformers include_prompt). */
  includePrompt: boolean
  prompts: Record<string, string>
  defaultPromptName?: string
  maxLength: number
  readonly variables: Map<string, tf.Variable>
  readonly tokenizer: TextTokenizer
  /** The directory the encoder was loaded from (undefined for a random model). */
  readonly sourceDir?: string
}

export interface Encoder extends EncoderFields {
  tokenize(texts: string[], options?: {maxLength?: number; prefixes?: string[]}): Promise<TokenBatch>
  /** Tokenizes on a worker thread until the returned function is called; undefined when the tokenizer already runs off the main thread. */
  startTokenizerWorker(): Promise<(() => Promise<void>) | undefined>
  forward(batch: TokenBatch, options?: {training?: boolean; seed?: number}): ForwardResult
  pool(hidden: tf.Tensor3D, batch: TokenBatch, options?: {normalize?: boolean; pooling?: PoolingMode}): tf.Tensor2D
  encode(texts: string[], options?: EncodeOptions): Promise<Float32Array[]>
  save(dir: string, options?: SaveOptions): Promise<void>
  fingerprint(): string
  dispose(): void
}

/** A checkpoint that cannot be loaded; the message names the file and, where relevant, the tensor. */
export class EncoderLoadError extends CodiembError {
  override name = 'EncoderLoadError'
}

export interface LoadEncoderOptions {
  /** The registry to look encoder implementations up in. */
  registry: Registry
  /** Keep weights non-trainable (inference only). */
  trainable?: boolean
}

/** Finds the encoder implementation for a model_type. */
export async function architectureFor(modelType: string, registry: Registry, configPath = 'config.json'): Promise<EncoderArchitecture> {
  const reg = registry
  const entries = reg.list('encoder')
  const entry = entries.find((e) => Array.isArray(e.meta?.modelTypes) && (e.meta!.modelTypes as unknown[]).includes(modelType)) ?? entries.find((e) => e.name === modelType)
  if (!entry) {
    const known = entries.flatMap((e) => (Array.isArray(e.meta?.modelTypes) ? (e.meta!.modelTypes as string[]) : [e.name]))
    throw new EncoderLoadError(`${configPath}: model_type "${modelType}" has no registered encoder (supported: ${known.join(', ') || 'none'})`)
  }
  return (await entry.load()) as EncoderArchitecture
}

function readConfig(dir: string): HfConfig {
  const path = join(dir, 'config.json')
  if (!existsSync(path)) throw new EncoderLoadError(`${dir}: no config.json: expected a Hugging Face model directory`)
  const config = readJsonFile(path, (reason) => new EncoderLoadError(`${path}: not valid JSON (${reason})`))
  if (!config || typeof config !== 'object' || typeof (config as HfConfig).model_type !== 'string') {
    throw new EncoderLoadError(`${path}: expected an object with a "model_type" string`)
  }
  return config as HfConfig
}

/** Loads a Hugging Face / sentence-transformers checkpoint directory. */
export async function loadEncoder(dir: string, options: LoadEncoderOptions): Promise<Encoder> {
  const root = resolve(dir)
  const config = readConfig(root)
  const configPath = join(root, 'config.json')
  const arch = await architectureFor(config.model_type, options.registry, configPath)
  try {
    arch.validateConfig(config)
  } catch (error) {
    throw new EncoderLoadError(`${configPath}: ${(error as Error).message}`)
  }
  const st = readSentenceTransformersConfig(root)
  const tokenizer = await loadTokenizer(root, {padTokenId: config.pad_token_id ?? undefined})

  let weights: SafetensorsFile
  try {
    weights = await openSafetensors(root)
  } catch (error) {
    if (!existsSync(join(root, 'model.safetensors')) && existsSync(join(root, 'pytorch_model.bin'))) {
      throw new EncoderLoadError(`${root}: only pytorch_model.bin found; convert it to safetensors (codiemb reads safetensors only)`)
    }
    throw error
  }
  const variables = new Map<string, tf.Variable>()
  const passthrough = new Map<string, LoadedTensor>()
  try {
    const names = new Set(weights.tensors().map((t) => t.name))
    const prefix = arch.weightPrefixes.find((p) => names.has(`${p}embeddings.word_embeddings.weight`))
    if (prefix === undefined) {
      throw new EncoderLoadError(
        `${weights.path}: tensor "embeddings.word_embeddings.weight" is missing (also looked for ${arch.weightPrefixes.filter(Boolean).map((p) => `"${p}embeddings.word_embeddings.weight"`).join(', ')})`,
      )
    }
    for (const [name, shape] of arch.parameterShapes(config)) {
      const full = prefix + name
      if (!names.has(full)) throw new EncoderLoadError(`${weights.path}: tensor "${full}" is missing (expected shape [${shape.join(', ')}] for ${configPath})`)
      const info = weights.info(full)
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        throw new EncoderLoadError(`${weights.path}: tensor "${full}" has shape [${info.shape.join(', ')}], expected [${shape.join(', ')}] from ${configPath}`)
      }
      const t = await weights.read(full)
      if (!(t.data instanceof Float32Array)) throw new EncoderLoadError(`${weights.path}: tensor "${full}" has dtype ${t.dtype}, expected a floating type`)
      const bad = firstNonFiniteIndex(t.data)
      if (bad >= 0) throw new EncoderLoadError(`${weights.path}: tensor "${full}" holds ${t.data[bad]} at index ${bad}; refusing weights that are not finite (a damaged or diverged checkpoint)`)
      // The variable shares the tensor's data; disposing the temporary keeps the tensor count exact.
      const initial = tf.tensor(t.data, shape, 'float32')
      variables.set(name, tf.variable(initial, options.trainable ?? true))
      initial.dispose()
    }
    for (const name of names) {
      if (name.startsWith(prefix) && arch.passthrough(name.slice(prefix.length))) passthrough.set(name.slice(prefix.length), await weights.read(name))
    }
  } catch (error) {
    for (const v of variables.values()) v.dispose()
    throw error
  } finally {
    await weights.close()
  }

  const tokConfig = readTokenizerConfig(root)
  const tokMax = typeof tokConfig.model_max_length === 'number' && tokConfig.model_max_length < 1e9 ? tokConfig.model_max_length : undefined
  const positions = arch.maxSequenceLength(config)
  const maxLength = Math.min(st.maxSeqLength ?? tokMax ?? positions, positions)
  return new TransformerEncoder({
    arch,
    config,
    tokenizer,
    variables,
    passthrough,
    pooling: st.pooling ?? 'mean',
    normalize: st.normalize,
    includePrompt: st.includePrompt ?? false,
    prompts: st.prompts,
    defaultPromptName: st.defaultPromptName,
    similarityFnName: st.similarityFnName,
    maxLength,
    sourceDir: root,
    doLowerCase: Boolean(tokConfig.do_lower_case),
  })
}

export interface RandomEncoderOptions {
  /** model_type, e.g. "bert" or "xlm-roberta". */
  arch: string
  /** A directory with a tokenizer (tokenizer.json and/or vocab.txt); its files are copied on save. */
  tokenizerDir: string
  layers: number
  hidden: number
  heads: number
  intermediate: number
  seed?: number
  /** Maximum sequence length (default 512). */
  maxPositions?: number
  pooling?: PoolingMode
  normalize?: boolean
  registry: Registry
}

/** A randomly initialised encoder (transformers' initialisation, seeded). */
export async function initRandomEncoder(options: RandomEncoderOptions): Promise<Encoder> {
  const arch = await architectureFor(options.arch, options.registry, '--arch')
  const tokenizer = await loadTokenizer(options.tokenizerDir)
  const config = arch.randomConfig({
    layers: options.layers,
    hidden: options.hidden,
    heads: options.heads,
    intermediate: options.intermediate,
    vocabSize: tokenizer.vocabSize,
    padTokenId: tokenizer.padId,
    maxPositions: options.maxPositions,
  })
  try {
    arch.validateConfig(config)
  } catch (error) {
    throw new EncoderLoadError(`invalid model shape: ${(error as Error).message}`)
  }
  const variables = new Map<string, tf.Variable>()
  let seed = options.seed ?? 42
  for (const [name, shape] of arch.parameterShapes(config)) {
    const init = tf.tidy(() => arch.initParameter(name, shape, config, seed++))
    variables.set(name, tf.variable(init, true))
    init.dispose()
  }
  const tokConfig = readTokenizerConfig(options.tokenizerDir)
  return new TransformerEncoder({
    arch,
    config,
    tokenizer,
    variables,
    passthrough: new Map(),
    pooling: options.pooling ?? 'mean',
    normalize: options.normalize ?? true,
    includePrompt: false,
    prompts: {},
    maxLength: arch.maxSequenceLength(config),
    tokenizerDir: resolve(options.tokenizerDir),
    doLowerCase: Boolean(tokConfig.do_lower_case),
  })
}

/**
 * What TransformerEncoder is built from: the public settings as the Encoder interface types them
 * (picked, not restated), plus what only the implementation keeps.
 */
interface EncoderParts
  extends Pick<Encoder, 'config' | 'tokenizer' | 'variables' | 'pooling' | 'normalize' | 'includePrompt' | 'prompts' | 'defaultPromptName' | 'maxLength' | 'sourceDir'> {
  arch: EncoderArchitecture
  passthrough: Map<string, LoadedTensor>
  similarityFnName?: string
  tokenizerDir?: string
  doLowerCase: boolean
}

// The class takes its public fields from EncoderFields by declaration merging, so they are written once.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
interface TransformerEncoder extends EncoderFields {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
class TransformerEncoder implements Encoder {
  private readonly arch: EncoderArchitecture
  private readonly passthrough: Map<string, LoadedTensor>
  private readonly tokenizerDir: string
  private readonly similarityFnName?: string
  private readonly doLowerCase: boolean

  constructor(parts: EncoderParts) {
    const {config} = parts
    const fields: EncoderFields = {
      modelType: config.model_type,
      config,
      numLayers: config.num_hidden_layers,
      hiddenSize: config.hidden_size,
      pooling: parts.pooling,
      normalize: parts.normalize,
      includePrompt: parts.includePrompt,
      prompts: parts.prompts,
      defaultPromptName: parts.defaultPromptName,
      maxLength: parts.maxLength,
      variables: parts.variables,
      tokenizer: parts.tokenizer,
      sourceDir: parts.sourceDir,
    }
    Object.assign(this, fields)
    this.arch = parts.arch
    this.passthrough = parts.passthrough
    this.similarityFnName = parts.similarityFnName
    this.tokenizerDir = parts.tokenizerDir ?? parts.sourceDir!
    this.doLowerCase = parts.doLowerCase
  }

  /** Tokenizes on a worker thread until the returned function is called; undefined when the tokenizer already runs off the main thread. */
  async startTokenizerWorker(): Promise<(() => Promise<void>) | undefined> {
    return this.tokenizer.startWorker?.()
  }

  tokenize(texts: string[], options: {maxLength?: number; prefixes?: string[]} = {}): Promise<TokenBatch> {
    const maxLength = Math.min(options.maxLength ?? this.maxLength, this.arch.maxSequenceLength(this.config))
    const prefixLengths = this.includePrompt || !options.prefixes ? undefined : options.prefixes.map((p) => codePointLength(p ?? ''))
    return this.tokenizer.encodeBatch(texts, {maxLength, prefixLengths})
  }

  forward(batch: TokenBatch, options: {training?: boolean; seed?: number} = {}): ForwardResult {
    const hiddenStates = this.arch.forward(this.variables, this.config, batch, {training: options.training ?? false, seed: options.seed})
    return {lastHiddenState: hiddenStates[hiddenStates.length - 1]!, hiddenStates}
  }

  pool(hidden: tf.Tensor3D, batch: TokenBatch, options: {normalize?: boolean; pooling?: PoolingMode} = {}): tf.Tensor2D {
    return poolHidden(hidden, batch, options.pooling ?? this.pooling, options.normalize ?? this.normalize)
  }

  /** The prompt for encode(): a literal instruction or filled template, a named prompt, or the default prompt. */
  private promptFor(options: EncodeOptions): Prompt {
    if (options.instruction !== undefined) return typeof options.instruction === 'string' ? literalPrompt(options.instruction) : options.instruction
    const name = options.prompt ?? this.defaultPromptName
    if (name === undefined) return NO_PROMPT
    const prompt = this.prompts[name]
    if (prompt === undefined) {
      const known = Object.keys(this.prompts)
      throw new ModelConfigError(`prompt "${name}" is not defined by this model (prompts: ${known.length ? known.join(', ') : 'none'})`)
    }
    return literalPrompt(prompt)
  }

  async encode(texts: string[], options: EncodeOptions = {}): Promise<Float32Array[]> {
    const prompt = this.promptFor(options)
    const batchSize = Math.max(1, options.batchSize ?? 32)
    const pooling = options.pooling ?? this.pooling
    if (!isPoolingMode(pooling)) throw new ModelConfigError(`pooling "${String(pooling)}" is not one of ${POOLING_MODES.join(', ')}`)
    const normalize = options.normalize ?? this.normalize
    // Longest first (as sentence-transformers) so each batch pads little; results go back in input order.
    const order = texts.map((_, i) => i).sort((a, b) => texts[b]!.length - texts[a]!.length || a - b)
    const out = new Array<Float32Array>(texts.length)
    let done = 0
    let tokens = 0
    for (let start = 0; start < order.length; start += batchSize) {
      const idx = order.slice(start, start + batchSize)
      const inputs = idx.map((i) => applyPrompt(prompt, texts[i]!))
      const batch = await this.tokenize(
        inputs.map((x) => x.input),
        {maxLength: options.maxLength, prefixes: prompt.prefix ? inputs.map((x) => x.prefix) : undefined},
      )
      const pooled = tf.tidy(() => this.pool(this.forward(batch).lastHiddenState, batch, {normalize, pooling}))
      const flat = (await pooled.data()) as Float32Array
      pooled.dispose()
      const H = this.hiddenSize
      idx.forEach((i, r) => (out[i] = flat.slice(r * H, (r + 1) * H)))
      done += idx.length
      tokens += batch.lengths.reduce((a, b) => a + b, 0)
      options.onEvent?.({type: 'encode-progress', done, total: texts.length, tokens})
    }
    return out
  }

  async save(dir: string, options: SaveOptions = {}): Promise<void> {
    const tensors: TensorToWrite[] = [...this.variables].map(([name, v]) => ({name, shape: v.shape, data: v.dataSync() as Float32Array}))
    for (const [name, t] of this.passthrough) tensors.push({name, shape: t.shape, data: t.data})
    await saveEncoderCheckpoint(
      dir,
      {
        config: this.config,
        baseClass: this.arch.baseClass,
        tensors,
        tokenizerDir: this.tokenizerDir,
        sentenceTransformers: {
          hiddenSize: this.hiddenSize,
          pooling: this.pooling,
          includePrompt: this.includePrompt,
          normalize: this.normalize,
          maxSeqLength: this.maxLength,
          prompts: this.prompts,
          defaultPromptName: this.defaultPromptName,
          similarityFnName: this.similarityFnName,
          doLowerCase: this.doLowerCase,
        },
      },
      options,
    )
  }

  fingerprint(): string {
    const h = createHash('sha256')
    // Cosmetic config fields (rewritten on save) do not change what the model computes.
    const config: Record<string, unknown> = {...this.config}
    for (const k of ['architectures', 'dtype', 'torch_dtype', 'transformers_version', '_name_or_path']) delete config[k]
    h.update(JSON.stringify(sortKeys(config)))
    h.update(JSON.stringify({pooling: this.pooling, normalize: this.normalize, includePrompt: this.includePrompt, prompts: this.prompts, maxLength: this.maxLength}))
    for (const name of [...this.variables.keys()].sort()) {
      const v = this.variables.get(name)!
      const data = v.dataSync() as Float32Array
      h.update(`${name}:${v.shape.join('x')};`)
      h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    }
    return h.digest('hex').slice(0, 16)
  }

  dispose(): void {
    for (const v of this.variables.values()) v.dispose()
    this.variables.clear()
  }
}
