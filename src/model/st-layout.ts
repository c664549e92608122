/**
 * The sentence-transformers directory layout, read from versions 5 and 6 and written in the
 * version-5 form (which both versions load):
 *
 *   modules.json                    [{idx, name, path, type}] — Transformer ("" path), Pooling, Normalize
 *   sentence_bert_config.json       {max_seq_length, do_lower_case} (v6 may omit max_seq_length)
 *   1_Pooling/config.json           v5: word_embedding_dimension + pooling_mode_* booleans + include_prompt
 *                                   v6: embedding_dimension + pooling_mode "cls"|"mean"|... + include_prompt
 *   2_Normalize/                    present when embeddings are L2-normalised
 *   config_sentence_transformers.json  {prompts: {name: text}, default_prompt_name, similarity_fn_name}
 *
 * Modules other than Transformer, Pooling and Normalize (Dense, LayerNorm, ...) are rejected with an
 * error naming modules.json and the module, rather than silently producing different embeddings.
 */
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import type {PoolingMode} from './pooling.js'
import {CodiembError} from '../core/errors.js'
import {readJsonFile} from '../core/json-file.js'

export interface SentenceTransformersConfig {
  /** Whether modules.json was found. */
  present: boolean
  pooling?: PoolingMode
  includePrompt?: boolean
  normalize: boolean
  maxSeqLength?: number
  prompts: Record<string, string>
  defaultPromptName?: string
  similarityFnName?: string
}

export class ModelConfigError extends CodiembError {
  override name = 'ModelConfigError'
}

function readJson(path: string): unknown {
  return readJsonFile(path, (reason) => new ModelConfigError(`${path}: cannot read JSON: ${reason}`))
}

/** sentence-transformers pooling mode names (v5 keys and v6 values) -> codiemb names. */
const V6_MODES: Record<string, PoolingMode> = {
  cls: 'cls',
  mean: 'mean',
  lasttoken: 'last-token',
  weightedmean: 'weighted-mean',
}
const V5_KEYS: Record<string, PoolingMode | undefined> = {
  pooling_mode_cls_token: 'cls',
  pooling_mode_mean_tokens: 'mean',
  pooling_mode_lasttoken: 'last-token',
  pooling_mode_weightedmean_tokens: 'weighted-mean',
  pooling_mode_max_tokens: undefined,
  pooling_mode_mean_sqrt_len_tokens: undefined,
}

export function readPoolingConfig(path: string): {pooling: PoolingMode; includePrompt: boolean} {
  const raw = readJson(path)
  if (!raw || typeof raw !== 'object') throw new ModelConfigError(`${path}: expected a JSON object`)
  const cfg = raw as Record<string, unknown>
  const includePrompt = cfg.include_prompt === undefined ? true : Boolean(cfg.include_prompt)
  const mode = cfg.pooling_mode
  if (mode !== undefined && mode !== null) {
    const names = Array.isArray(mode) ? mode : [mode]
    if (names.length !== 1 || typeof names[0] !== 'string') {
      throw new ModelConfigError(`${path}: pooling_mode: expected one mode name, got ${JSON.stringify(mode)}`)
    }
    const m = V6_MODES[names[0].toLowerCase().replace(/[-_]/g, '').replace(/tokens?$/, '').replace(/^last$/, 'lasttoken')]
    if (!m) throw new ModelConfigError(`${path}: pooling_mode "${names[0]}" is not supported (supported: cls, mean, lasttoken, weightedmean)`)
    return {pooling: m, includePrompt}
  }
  const on = Object.keys(V5_KEYS).filter((k) => cfg[k] === true)
  if (on.length !== 1) {
    throw new ModelConfigError(
      `${path}: expected exactly one pooling_mode_* flag set to true (or a "pooling_mode" string), found ${on.length ? on.join(', ') : 'none'}`,
    )
  }
  const m = V5_KEYS[on[0]!]
  if (!m) throw new ModelConfigError(`${path}: ${on[0]} is not supported (supported: cls, mean, lasttoken, weightedmean pooling)`)
  return {pooling: m, includePrompt}
}

export function readSentenceTransformersConfig(dir: string): SentenceTransformersConfig {
  const out: SentenceTransformersConfig = {present: false, normalize: false, prompts: {}}
  const stConfigPath = join(dir, 'config_sentence_transformers.json')
  if (existsSync(stConfigPath)) {
    const cfg = readJson(stConfigPath) as Record<string, unknown>
    const prompts = cfg.prompts
    if (prompts !== undefined && prompts !== null) {
      if (typeof prompts !== 'object' || Array.isArray(prompts) || !Object.values(prompts).every((v) => typeof v === 'string')) {
        throw new ModelConfigError(`${stConfigPath}: prompts: expected an object of name -> prompt text`)
      }
      out.prompts = {...(prompts as Record<string, string>)}
    }
    if (typeof cfg.default_prompt_name === 'string') {
      if (!(cfg.default_prompt_name in out.prompts)) {
        throw new ModelConfigError(`${stConfigPath}: default_prompt_name "${cfg.default_prompt_name}" is not one of the prompts`)
      }
      out.defaultPromptName = cfg.default_prompt_name
    }
    if (typeof cfg.similarity_fn_name === 'string') out.similarityFnName = cfg.similarity_fn_name
  }
  const sbertPath = join(dir, 'sentence_bert_config.json')
  if (existsSync(sbertPath)) {
    const cfg = readJson(sbertPath) as Record<string, unknown>
    if (cfg.max_seq_length !== undefined && cfg.max_seq_length !== null) {
      if (!Number.isInteger(cfg.max_seq_length) || (cfg.max_seq_length as number) < 1) {
        throw new ModelConfigError(`${sbertPath}: max_seq_length: expected a positive integer, got ${JSON.stringify(cfg.max_seq_length)}`)
      }
      out.maxSeqLength = cfg.max_seq_length as number
    }
  }
  const modulesPath = join(dir, 'modules.json')
  if (!existsSync(modulesPath)) return out
  out.present = true
  const modules = readJson(modulesPath)
  if (!Array.isArray(modules)) throw new ModelConfigError(`${modulesPath}: expected an array of modules`)
  for (const [i, m] of modules.entries()) {
    const type = typeof m?.type === 'string' ? (m.type as string) : ''
    const path = typeof m?.path === 'string' ? (m.path as string) : ''
    const kind = type.split('.').pop()
    if (kind === 'Transformer') {
      if (path !== '') throw new ModelConfigError(`${modulesPath}: module ${i}: a Transformer in a subfolder ("${path}") is not supported; expected path ""`)
    } else if (kind === 'Pooling') {
      const p = readPoolingConfig(join(dir, path, 'config.json'))
      out.pooling = p.pooling
      out.includePrompt = p.includePrompt
    } else if (kind === 'Normalize') {
      out.normalize = true
    } else {
      throw new ModelConfigError(`${modulesPath}: module ${i} of type "${type}" is not supported (supported: Transformer, Pooling, Normalize)`)
    }
  }
  return out
}

const V5_FLAG_FOR: Record<PoolingMode, string> = {
  cls: 'pooling_mode_cls_token',
  mean: 'pooling_mode_mean_tokens',
  'last-token': 'pooling_mode_lasttoken',
  'weighted-mean': 'pooling_mode_weightedmean_tokens',
}

/** The sentence-transformers files for a checkpoint (path -> JSON text), in the version-5 layout. */
export function sentenceTransformersFiles(opts: {
  hiddenSize: number
  pooling: PoolingMode
  includePrompt: boolean
  normalize: boolean
  maxSeqLength: number
  prompts: Record<string, string>
  defaultPromptName?: string
  similarityFnName?: string
  doLowerCase?: boolean
}): Record<string, string> {
  const modules = [
    {idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer'},
    {idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling'},
  ]
  if (opts.normalize) modules.push({idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize'})
  const pooling: Record<string, unknown> = {word_embedding_dimension: opts.hiddenSize}
  for (const [mode, key] of Object.entries(V5_FLAG_FOR)) pooling[key] = mode === opts.pooling
  pooling.pooling_mode_max_tokens = false
  pooling.pooling_mode_mean_sqrt_len_tokens = false
  pooling.include_prompt = opts.includePrompt
  const files: Record<string, string> = {
    'modules.json': JSON.stringify(modules, null, 2) + '\n',
    '1_Pooling/config.json': JSON.stringify(pooling, null, 4) + '\n',
    'sentence_bert_config.json': JSON.stringify({max_seq_length: opts.maxSeqLength, do_lower_case: opts.doLowerCase ?? false}, null, 4) + '\n',
    'config_sentence_transformers.json':
      JSON.stringify(
        {
          model_type: 'SentenceTransformer',
          prompts: opts.prompts,
          default_prompt_name: opts.defaultPromptName ?? null,
          similarity_fn_name: opts.similarityFnName ?? 'cosine',
        },
        null,
        2,
      ) + '\n',
  }
  if (opts.normalize) files['2_Normalize/config.json'] = '{}\n'
  return files
}
