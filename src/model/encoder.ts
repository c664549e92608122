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
import type {EncodeProgressEvent} from '../core/events.js'
import type {EncoderArchitecture, HfConfig} from './architecture.js'
import {isPoolingMode, poolHidden, POOLING_MODES, type PoolingMode} from './pooling.js'
import type {LoadedTensor} from '../io/safetensors.js'
import {firstNonFiniteIndex} from '../io/finite-values.js'
import {defaultDtype} from '../io/safetensors-stream.js'
import type {SafetensorsDtype} from '../io/safetensors-dtypes.js'
import {bf16Tensor, keepsBf16Weights} from '../tensor/storage.js'
import {saveEncoderCheckpoint, sortKeys, type SaveOptions, type TensorSource} from './encoder-save.js'
import {ModelConfigError, readSentenceTransformersConfig} from './st-layout.js'
import {codePointLength, loadTokenizer, readTokenizerConfig, type TextTokenizer, type TokenBatch} from './tokenizer/tokenizer.js'
import {applyPrompt, literalPrompt, NO_PROMPT, type Prompt} from '../core/prompts.js'
import {architectureFor, EncoderLoadError, openCheckedModel} from './consistency.js'
import {randomModelConfig} from './shape.js'

export type {TokenBatch} from './tokenizer/tokenizer.js'
export type {PoolingMode} from './pooling.js'
export type {SaveOptions} from './encoder-save.js'
export {ModelConfigError} from './st-layout.js'
export {architectureFor, EncoderLoadError} from './consistency.js'

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
  forward(batch: TokenBatch, options?: {training?: boolean; seed?: number; checkpointLayers?: boolean}): ForwardResult
  pool(hidden: tf.Tensor3D, batch: TokenBatch, options?: {normalize?: boolean; pooling?: PoolingMode}): tf.Tensor2D
  encode(texts: string[], options?: EncodeOptions): Promise<Float32Array[]>
  save(dir: string, options?: SaveOptions): Promise<void>
  fingerprint(): string
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
}

/** Loads a Hugging Face / sentence-transformers checkpoint directory (checked first: src/model/consistency.ts). */
export async function loadEncoder(dir: string, options: LoadEncoderOptions): Promise<Encoder> {
  const root = resolve(dir)
  const {config, arch, tokenizer, weights, selection, warning} = await openCheckedModel(root, options.registry)
  const variables = new Map<string, tf.Variable>()
  const passthrough = new Map<string, LoadedTensor>()
  // Under --precision bf16 (torch) BF16 weights stay bfloat16 in memory and every tensor is saved in
  // its checkpoint's dtype (src/tensor/storage.ts); otherwise weights are float32 and saved as F32.
  const storedDtypes = keepsBf16Weights() ? new Map<string, SafetensorsDtype>() : undefined
  let st: ReturnType<typeof readSentenceTransformersConfig>
  try {
    st = readSentenceTransformersConfig(root)
    for (const {file, name, shape} of selection.parameters) {
      const t = await weights.read(file)
      if (!(t.data instanceof Float32Array)) throw new EncoderLoadError(`${weights.path}: tensor "${file}" has dtype ${t.dtype}, expected a floating type`)
      const bad = firstNonFiniteIndex(t.data)
      if (bad >= 0) throw new EncoderLoadError(`${weights.path}: tensor "${file}" holds ${t.data[bad]} at index ${bad}; refusing weights that are not finite (a damaged or diverged checkpoint)`)
      // The variable shares the tensor's data; disposing the temporary keeps the tensor count exact.
      const initial = storedDtypes && t.dtype === 'BF16' ? bf16Tensor(t.data, shape) : tf.tensor(t.data, shape, 'float32')
      storedDtypes?.set(name, t.dtype)
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
  /** Each weight's checkpoint dtype, to save it in (set when loaded keeping bf16 weights). */
  storedDtypes?: Map<string, SafetensorsDtype>
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
  private readonly storedDtypes?: Map<string, SafetensorsDtype>
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
    this.storedDtypes = parts.storedDtypes
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

  forward(batch: TokenBatch, options: {training?: boolean; seed?: number; checkpointLayers?: boolean} = {}): ForwardResult {
    const hiddenStates = this.arch.forward(this.variables, this.config, batch, {...options, training: options.training ?? false})
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
      // One event-loop turn per batch: the awaits above can all resolve as microtasks, and a long
      // encode must not starve signal handlers (Ctrl-C), timers and output streams.
      await new Promise((resolve) => setImmediate(resolve))
    }
    return out
  }

  async save(dir: string, options: SaveOptions = {}): Promise<void> {
    // Read lazily: the writer streams one tensor at a time. A weight loaded keeping its dtype is
    // saved in it (a bf16 checkpoint stays bf16, trained float32 masters rounded to nearest even).
    const tensors: TensorSource[] = [...this.variables].map(([name, v]) => ({name, shape: v.shape, dtype: this.storedDtypes?.get(name), read: () => v.dataSync() as Float32Array}))
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
