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
import {resolve} from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import type {Registry} from '../registry/registry.js'
import type {EncoderArchitecture, HfConfig} from './architecture.js'
import {isPoolingMode, poolHidden, POOLING_MODES, type PoolingMode} from './pooling.js'
import type {LoadedTensor} from '../io/safetensors.js'
import {defaultDtype} from '../io/safetensors-stream.js'
import type {SafetensorsDtype} from '../io/safetensors-dtypes.js'
import {keepsBf16Weights} from '../tensor/storage.js'
import {loadWeight} from './load-weights.js'
import {readTokenizerFiles, saveEncoderCheckpoint, sortKeys, type SaveOptions, type TensorSource} from './encoder-save.js'
import {ModelConfigError, readSentenceTransformersConfig} from './st-layout.js'
import {codePointLength, loadTokenizer, readTokenizerConfig, type TextTokenizer, type TokenBatch} from './tokenizer/tokenizer.js'
import {literalPrompt, NO_PROMPT, type Prompt} from '../core/prompts.js'
import {encodeInWindows, type EncodeOptions} from './encode-windows.js'
import {architectureFor, EncoderLoadError, openCheckedModel} from './consistency.js'
import {randomModelConfig} from './shape.js'
import {adapterConfigJson, attachAdapterWeights, checkLoraOptions, checkUnmergedSupport, effectiveParams, initAdapters, isAdapterFolder, LoraError, loraModules, PEFT_PREFIX, readAdapterConfig, type LoraOptions, type LoraState} from './lora.js'

export type {TokenBatch} from './tokenizer/tokenizer.js'
export type {PoolingMode} from './pooling.js'
export type {SaveOptions} from './encoder-save.js'
export {SORT_WINDOW_BATCHES, type EncodeOptions} from './encode-windows.js'
export {ModelConfigError} from './st-layout.js'
export {architectureFor, EncoderLoadError} from './consistency.js'

export interface ForwardResult {
  lastHiddenState: tf.Tensor3D
  /** [0] is the embedding output, [l] the output of layer l (numLayers + 1 tensors). */
  hiddenStates: tf.Tensor3D[]
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
  /** LoRA adapters (src/model/lora.ts): then `variables` holds only the adapters and the base weights are frozen. */
  readonly lora?: LoraState
  /** The frozen base weights while adapters are attached. */
  readonly frozen?: ReadonlyMap<string, tf.Variable>
}

export interface Encoder extends EncoderFields {
  tokenize(texts: string[], options?: {maxLength?: number; prefixes?: string[]}): Promise<TokenBatch>
  /** Tokenizes on a worker thread until the returned function is called; undefined when the tokenizer already runs off the main thread. */
  startTokenizerWorker(): Promise<(() => Promise<void>) | undefined>
  forward(batch: TokenBatch, options?: {training?: boolean; seed?: number; checkpointLayers?: boolean}): ForwardResult
  pool(hidden: tf.Tensor3D, batch: TokenBatch, options?: {normalize?: boolean; pooling?: PoolingMode}): tf.Tensor2D
  encode(texts: string[], options?: EncodeOptions): Promise<Float32Array[]>
  save(dir: string, options?: SaveOptions): Promise<void>
  fingerprint(): string
  /** Freezes the weights and trains new LoRA adapters instead (seeded); `basePath` is recorded in adapter_config.json. */
  addLora(options: LoraOptions, seed: number, basePath?: string): void
  /** Folds the adapters into the weights (W + α/r · B A): a plain model again, saved as a full checkpoint. */
  foldLora(): void
  dispose(): void
}

export interface LoadEncoderOptions {
  /** The registry to look encoder implementations up in. */
  registry: Registry
  /** Keep weights non-trainable (inference only). */
  trainable?: boolean
  /**
   * Called once per load with each warning, e.g. the checkpoint tensors the encoder does not use
   * (kept or ignored, and why). The CLI puts them in the --json envelope's warnings / on stderr.
   */
  onWarning?: (message: string) => void
  /** config.json keys to override before the model is checked and built (e.g. {is_causal: false}); saved with the model. */
  configOverrides?: Record<string, unknown>
}

/** Loads a Hugging Face / sentence-transformers checkpoint directory (checked first: src/model/consistency.ts). */
export async function loadEncoder(dir: string, options: LoadEncoderOptions): Promise<Encoder> {
  const root = resolve(dir)
  if (isAdapterFolder(root)) return loadAdapterFolder(root, options)
  const {config, arch, tokenizer, weights, selection, warning} = await openCheckedModel(root, options.registry, options.configOverrides)
  const variables = new Map<string, tf.Variable>()
  const passthrough = new Map<string, LoadedTensor>()
  // Under --precision bf16 (torch) BF16 weights stay bfloat16 in memory and every tensor is saved in
  // its checkpoint's dtype (src/tensor/storage.ts); otherwise weights are float32 and saved as F32.
  const storedDtypes = keepsBf16Weights() ? new Map<string, SafetensorsDtype>() : undefined
  let st: ReturnType<typeof readSentenceTransformersConfig>
  try {
    st = readSentenceTransformersConfig(root)
    // One tensor at a time, each read from its byte range and dropped once in backend memory (src/model/load-weights.ts).
    for (const {file, name, shape} of selection.parameters) {
      const {tensor: initial, dtype} = await loadWeight(weights, file, shape, storedDtypes !== undefined)
      storedDtypes?.set(name, dtype)
      // The variable shares the tensor's data; disposing the temporary keeps the tensor count exact.
      variables.set(name, tf.variable(initial, options.trainable ?? true))
      initial.dispose()
    }
    for (const t of selection.unused) if (t.kept) passthrough.set(t.name.slice(selection.prefix.length), await weights.read(t.name))
  } catch (error) {
    for (const v of variables.values()) v.dispose()
    throw error
  } finally {
    await weights.close()
  }
  if (warning) options.onWarning?.(warning)

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
    storedDtypes,
    pooling: st.pooling ?? 'mean',
    normalize: st.normalize,
    includePrompt: st.includePrompt ?? false,
    prompts: st.prompts,
    defaultPromptName: st.defaultPromptName,
    similarityFnName: st.similarityFnName,
    maxLength,
    sourceDir: root,
    tokenizerFiles: readTokenizerFiles(root),
    doLowerCase: Boolean(tokConfig.do_lower_case),
  })
}

/**
 * A LoRA adapter folder (src/model/lora.ts): its base model (adapter_config.json
 * base_model_name_or_path) with the adapters attached, and the folder's own sentence-transformers
 * settings (pooling, prompts...) where it has them.
 */
async function loadAdapterFolder(root: string, options: LoadEncoderOptions): Promise<Encoder> {
  const {options: lora, basePath} = readAdapterConfig(root)
  const encoder = await loadEncoder(basePath, options)
  try {
    await attachAdapterWeights(encoder, root, lora, basePath)
    const st = readSentenceTransformersConfig(root)
    if (st.present) Object.assign(encoder, {pooling: st.pooling ?? encoder.pooling, normalize: st.normalize, includePrompt: st.includePrompt ?? encoder.includePrompt, prompts: st.prompts, defaultPromptName: st.defaultPromptName, maxLength: Math.min(st.maxSeqLength ?? encoder.maxLength, encoder.maxLength)})
    Object.assign(encoder, {lora: {...encoder.lora!, options: lora}, sourceDir: root})
    return encoder
  } catch (error) {
    encoder.dispose()
    throw error
  }
}

export interface RandomEncoderOptions {
  /** model_type, e.g. "bert" or "xlm-roberta". */
  arch: string
  /** A directory with a tokenizer (tokenizer.json and/or vocab.txt); its files are read now and written on save. */
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
  const config = randomModelConfig(arch, tokenizer, options)
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
    tokenizerFiles: readTokenizerFiles(resolve(options.tokenizerDir)),
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
  /** Each weight's checkpoint dtype, to save it in (set when loaded keeping bf16 weights). */
  storedDtypes?: Map<string, SafetensorsDtype>
  similarityFnName?: string
  /** The tokenizer files, read at load and written on save. */
  tokenizerFiles: ReadonlyMap<string, Uint8Array>
  doLowerCase: boolean
}

// The class takes its public fields from EncoderFields by declaration merging, so they are written once.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
interface TransformerEncoder extends EncoderFields {}
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
class TransformerEncoder implements Encoder {
  private readonly arch: EncoderArchitecture
  private readonly passthrough: Map<string, LoadedTensor>
  private readonly tokenizerFiles: ReadonlyMap<string, Uint8Array>
  private readonly storedDtypes?: Map<string, SafetensorsDtype>
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
    this.storedDtypes = parts.storedDtypes
    this.similarityFnName = parts.similarityFnName
    this.tokenizerFiles = parts.tokenizerFiles
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

  forward(batch: TokenBatch, options: {training?: boolean; seed?: number; checkpointLayers?: boolean} = {}): ForwardResult {
    const training = options.training ?? false
    // With adapters the weights are formed per pass from the frozen base (inside the caller's tape or
    // tidy); training with LoRA dropout applies the adapters beside the frozen weights instead.
    const unmerged = this.lora && training && this.lora.options.dropout > 0 ? {scaling: this.lora.scaling, dropout: this.lora.options.dropout} : undefined
    const params = !this.lora ? this.variables : unmerged ? new Map([...this.frozen!, ...this.variables]) : effectiveParams(this.frozen!, this.variables, this.lora)
    const hiddenStates = this.arch.forward(params, this.config, batch, {...options, training, ...(unmerged ? {lora: unmerged} : {})})
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
    const pooling = options.pooling ?? this.pooling
    if (!isPoolingMode(pooling)) throw new ModelConfigError(`pooling "${String(pooling)}" is not one of ${POOLING_MODES.join(', ')}`)
    return encodeInWindows(this, texts, this.promptFor(options), {...options, pooling, normalize: options.normalize ?? this.normalize})
  }

  async save(dir: string, options: SaveOptions = {}): Promise<void> {
    // An adapted model saves its adapters only (PEFT's layout); fold them first for a full checkpoint.
    // Read lazily: the writer streams one tensor at a time. A weight loaded keeping its dtype is
    // saved in it (a bf16 checkpoint stays bf16, trained float32 masters rounded to nearest even).
    const prefix = this.lora ? PEFT_PREFIX : ''
    const tensors: TensorSource[] = [...this.variables].map(([name, v]) => ({name: prefix + name, shape: v.shape, dtype: this.storedDtypes?.get(name), read: () => v.dataSync() as Float32Array}))
    if (!this.lora)
      for (const [name, t] of this.passthrough) {
        const dtype = this.storedDtypes ? t.dtype : t.data instanceof Float32Array ? undefined : defaultDtype(t.data, 'F32')
        tensors.push({name, shape: t.shape, dtype, read: () => t.data})
      }
    await saveEncoderCheckpoint(
      dir,
      {
        config: this.config,
        baseClass: this.arch.baseClass,
        tensors,
        tokenizerFiles: this.tokenizerFiles,
        adapterConfig: this.lora ? adapterConfigJson(this.lora) : undefined,
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
    const weights = new Map([...(this.frozen ?? []), ...this.variables])
    for (const name of [...weights.keys()].sort()) {
      const v = weights.get(name)!
      const data = v.dataSync() as Float32Array
      h.update(`${name}:${v.shape.join('x')};`)
      h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    }
    return h.digest('hex').slice(0, 16)
  }

  addLora(options: LoraOptions, seed: number, basePath?: string): void {
    if (this.lora) throw new LoraError('the encoder already has LoRA adapters')
    checkLoraOptions(options)
    const shapes = this.arch.parameterShapes(this.config)
    const modules = loraModules(shapes, options.targetModules)
    checkUnmergedSupport(modules, this.arch.unmergedLoraModules, this.modelType, options.dropout)
    const adapters = initAdapters(modules, new Map(shapes), options.rank, seed)
    const frozen = new Map(this.variables)
    for (const v of frozen.values()) v.trainable = false
    this.variables.clear()
    for (const [name, v] of adapters) this.variables.set(name, v)
    Object.assign(this, {frozen, lora: {options, scaling: options.alpha / options.rank, modules, basePath: basePath ?? this.sourceDir}})
  }

  foldLora(): void {
    if (!this.lora) throw new LoraError('the encoder has no LoRA adapters to fold')
    const {modules, scaling} = this.lora
    for (const m of modules) tf.tidy(() => this.frozen!.get(`${m}.weight`)!.assign(effectiveParams(this.frozen!, this.variables, {modules: [m], scaling} as LoraState).get(`${m}.weight`)!))
    for (const v of this.variables.values()) v.dispose()
    this.variables.clear()
    for (const [name, v] of this.frozen!) {
      v.trainable = true
      this.variables.set(name, v)
    }
    Object.assign(this, {frozen: undefined, lora: undefined})
  }

  dispose(): void {
    for (const v of [...this.variables.values(), ...(this.frozen?.values() ?? [])]) v.dispose()
    this.variables.clear()
  }
}
