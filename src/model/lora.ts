/**
 * LoRA adapters (Hu et al. 2021) on an encoder's linear layers, in PEFT's format. For each targeted
 * linear layer with weight W [out, in]:
 *
 *   W_eff = W + (α / r) · B A,   A [r, in] (lora_A), B [out, r] (lora_B),
 *
 * A drawn as PEFT's default (kaiming-uniform with a = √5, i.e. U(−1/√in, 1/√in)), B zero, so the
 * adapted model starts as the base model. Only A and B train: the base weights are frozen (not in the
 * encoder's `variables`, so neither the optimizer nor the gradients ever see them). The effective
 * weights are formed at each forward pass from the frozen base and the adapters, so any encoder
 * architecture takes adapters unchanged; the price is one extra copy of each adapted weight per
 * pass (kept for backward while training).
 *
 * LoRA dropout (lora_dropout p > 0) acts on the adapter's input, which a merged weight has not: a
 * training pass with dropout then applies the adapters beside their frozen weights, as PEFT's LoRA
 * Linear does: y = x Wᵀ (+ b) + (α / r) · lora_B(lora_A(dropout_p(x))) (withAdapter), inside the
 * architecture's layers (EncoderArchitecture.unmergedLoraModules), with each module's mask seeded
 * from its layer's seed and its name, so a checkpointed layer recomputes the same masks and a resumed
 * run draws the same ones. Inference (embed, eval, probes) and training without dropout use the
 * merged weights, which compute the same function when nothing is dropped.
 *
 * Targets are matched as PEFT's `target_modules` list: a module (a parameter name without `.weight`)
 * is adapted when it equals a target or ends with `.` + target; `all-linear` adapts every 2-d weight
 * except the token embeddings. On disk an adapter folder holds PEFT's `adapter_config.json` (peft_type
 * LORA, r, lora_alpha, lora_dropout, target_modules, base_model_name_or_path, task_type
 * FEATURE_EXTRACTION) and `adapter_model.safetensors` with PEFT's key names
 * (`base_model.model.<module>.lora_A.weight` / `lora_B.weight`), plus codiemb's tokenizer and
 * sentence-transformers files so `embed` / `eval` / `train --resume` load it with its base. PEFT
 * itself is not installed here: the format follows PEFT's documented save layout, not a PEFT run.
 */
import {existsSync} from 'node:fs'
import {isAbsolute, join, resolve} from 'node:path'
import * as tf from '@tensorflow/tfjs-core'
import {CodiembError} from '../core/errors.js'
import {readJsonFile} from '../core/json-file.js'
import {openSafetensors} from '../io/safetensors.js'

export const ADAPTER_CONFIG_FILE = 'adapter_config.json'
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors'
/** PEFT's prefix in front of the base model's module paths. */
export const PEFT_PREFIX = 'base_model.model.'

export interface LoraOptions {
  rank: number
  alpha: number
  dropout: number
  /** Module names (PEFT target_modules) or "all-linear". */
  targetModules: string[] | 'all-linear'
}

/** The adapters of an encoder: settings, the adapted modules and where the base model lives. */
export interface LoraState {
  options: LoraOptions
  /** α / r. */
  scaling: number
  /** Adapted modules (parameter names without `.weight`), in parameter order. */
  modules: string[]
  /** The base model's directory (adapter_config.json base_model_name_or_path). */
  basePath?: string
}

export class LoraError extends CodiembError {
  override name = 'LoraError'
}

export const loraA = (module: string) => `${module}.lora_A.weight`
export const loraB = (module: string) => `${module}.lora_B.weight`

/** The modules `targets` adapts among parameters of these shapes; fails naming a target that matches nothing. */
export function loraModules(shapes: [string, number[]][], targets: LoraOptions['targetModules']): string[] {
  const linear = shapes.filter(([name, shape]) => shape.length === 2 && name.endsWith('.weight') && !/embed/.test(name)).map(([name]) => name.slice(0, -'.weight'.length))
  if (targets === 'all-linear') return linear
  const matches = (module: string, t: string) => module === t || module.endsWith(`.${t}`)
  for (const t of targets) {
    if (!linear.some((m) => matches(m, t))) throw new LoraError(`/train/lora/targetModules: "${t}" matches no linear layer of this model (e.g. ${linear.slice(0, 4).join(', ')})`)
  }
  return linear.filter((m) => targets.some((t) => matches(m, t)))
}

/** Checks options that the implementation cannot honour. */
export function checkLoraOptions(options: LoraOptions): void {
  if (!(Number.isInteger(options.rank) && options.rank >= 1)) throw new LoraError(`/train/lora/rank: expected a positive integer, got ${options.rank}`)
  if (!(options.dropout >= 0 && options.dropout < 1)) throw new LoraError(`/train/lora/dropout: expected a rate in [0, 1), got ${options.dropout}`)
}

/**
 * Checks that an architecture applies every adapted module unmerged (needed for LoRA dropout):
 * each module must be `<layer prefix>.<N>.<one of unmergedLoraModules>`.
 */
export function checkUnmergedSupport(modules: readonly string[], supported: readonly string[] | undefined, modelType: string, dropout: number): void {
  if (!(dropout > 0)) return
  const missing = modules.filter((m) => !(supported ?? []).some((s) => new RegExp(`(^|\\.)\\d+\\.${s.replace(/\./g, '\\.')}$`).test(m)))
  if (missing.length) {
    throw new LoraError(`/train/lora/dropout: ${dropout} needs the adapters applied beside their weights, which the "${modelType}" encoder does not do for ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` and ${missing.length - 3} more` : ''}; use dropout 0 or other targetModules`)
  }
}

/** New adapters for `modules` (seeded): A ~ U(−1/√in, 1/√in), B = 0. */
export function initAdapters(modules: string[], shapes: Map<string, number[]>, rank: number, seed: number): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>()
  for (const [i, module] of modules.entries()) {
    const [rows, cols] = shapes.get(`${module}.weight`)!
    const bound = 1 / Math.sqrt(cols!)
    out.set(loraA(module), tf.variable(tf.tidy(() => tf.randomUniform([rank, cols!], -bound, bound, 'float32', seed + i)), true))
    out.set(loraB(module), tf.variable(tf.zeros([rows!, rank]), true))
  }
  return out
}

/** The weights a forward pass uses: the base, with each adapted weight replaced by W + scaling · B A (differentiable in A and B). */
export function effectiveParams(base: ReadonlyMap<string, tf.Tensor>, adapters: ReadonlyMap<string, tf.Tensor>, state: LoraState): Map<string, tf.Tensor> {
  const params = new Map(base)
  for (const module of state.modules) {
    const name = `${module}.weight`
    const delta = tf.matMul(adapters.get(loraB(module))!, adapters.get(loraA(module))!)
    params.set(name, tf.add(base.get(name)!, state.scaling === 1 ? delta : tf.mul(delta, state.scaling)))
  }
  return params
}

/** What attachAdapterWeights needs of an encoder (structural: this module sits below encoder.ts). */
interface AdaptableEncoder {
  readonly variables: Map<string, tf.Variable>
  readonly lora?: LoraState
  addLora(options: LoraOptions, seed: number, basePath?: string): void
}

/**
 * Attaches the adapters of folder `root` (adapter_model.safetensors, PEFT key names) to `encoder`, its
 * base model: the file must hold exactly lora_A / lora_B of the modules `options.targetModules` selects.
 */
export async function attachAdapterWeights(encoder: AdaptableEncoder, root: string, options: LoraOptions, basePath: string): Promise<void> {
  const file = await openSafetensors(join(root, ADAPTER_WEIGHTS_FILE))
  try {
    const names = file.tensors().map((t) => t.name)
    const modules = names.filter((n) => n.startsWith(PEFT_PREFIX) && n.endsWith('.lora_A.weight')).map((n) => n.slice(PEFT_PREFIX.length, -'.lora_A.weight'.length))
    const expected = new Set(modules.flatMap((m) => [PEFT_PREFIX + loraA(m), PEFT_PREFIX + loraB(m)]))
    const stray = names.filter((n) => !expected.has(n))
    if (stray.length || modules.length === 0 || expected.size !== names.length) {
      throw new LoraError(`${file.path}: expected pairs of ${PEFT_PREFIX}<module>.lora_A.weight / lora_B.weight, got ${(stray.length ? stray : names).slice(0, 3).join(', ') || 'no tensors'}`)
    }
    // Dropout acts only in training and the adapters are loaded as trained: read them without it.
    encoder.addLora({...options, dropout: 0}, 0, basePath)
    const state = encoder.lora!
    const differ = modules.filter((m) => !state.modules.includes(m)).concat(state.modules.filter((m) => !modules.includes(m)))
    if (differ.length) {
      throw new LoraError(`${file.path}: its ${modules.length} adapted modules are not the ${state.modules.length} that target_modules selects on the base model (e.g. ${differ.slice(0, 3).join(', ')})`)
    }
    for (const [name, variable] of encoder.variables) {
      const t = await file.read(PEFT_PREFIX + name)
      if (t.shape.join(',') !== variable.shape.join(',') || !(t.data instanceof Float32Array)) {
        throw new LoraError(`${file.path}: tensor "${PEFT_PREFIX}${name}" has shape [${t.shape}] (${t.dtype}), expected [${variable.shape}] (rank ${options.rank})`)
      }
      tf.tidy(() => variable.assign(tf.tensor(t.data as Float32Array, t.shape)))
    }
  } finally {
    await file.close()
  }
}

/** adapter_config.json as PEFT writes it for a LoRA feature-extraction adapter. */
export function adapterConfigJson(state: LoraState): Record<string, unknown> {
  const targets = state.options.targetModules === 'all-linear' ? [...new Set(state.modules.map((m) => m.split('.').pop()!))].sort() : state.options.targetModules
  return {
    base_model_name_or_path: state.basePath ?? null,
    bias: 'none',
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    lora_alpha: state.options.alpha,
    lora_dropout: state.options.dropout,
    modules_to_save: null,
    peft_type: 'LORA',
    r: state.options.rank,
    target_modules: targets,
    task_type: 'FEATURE_EXTRACTION',
    use_dora: false,
    use_rslora: false,
  }
}

/** Whether `dir` is an adapter folder (adapter_config.json and no config.json of its own). */
export function isAdapterFolder(dir: string): boolean {
  return existsSync(join(dir, ADAPTER_CONFIG_FILE)) && !existsSync(join(dir, 'config.json'))
}

/** Reads an adapter folder's adapter_config.json: the LoRA options and the base model's directory (resolved against the folder). */
export function readAdapterConfig(dir: string): {options: LoraOptions; basePath: string} {
  const path = join(dir, ADAPTER_CONFIG_FILE)
  const c = readJsonFile(path, (reason) => new LoraError(`${path}: not valid JSON (${reason})`)) as Record<string, unknown>
  const fail = (field: string, expected: string) => new LoraError(`${path}: ${field}: expected ${expected}, got ${JSON.stringify(c?.[field])}`)
  if (!c || typeof c !== 'object') throw new LoraError(`${path}: expected a JSON object`)
  if (c.peft_type !== 'LORA') throw fail('peft_type', '"LORA" (the only adapter type codiemb reads)')
  if (!Number.isInteger(c.r) || (c.r as number) < 1) throw fail('r', 'a positive integer')
  if (typeof c.lora_alpha !== 'number') throw fail('lora_alpha', 'a number')
  for (const flag of ['use_dora', 'use_rslora', 'fan_in_fan_out'] as const) if (c[flag] === true) throw fail(flag, 'false (not supported)')
  if (c.bias !== undefined && c.bias !== 'none') throw fail('bias', '"none" (trained biases are not supported)')
  const targets = c.target_modules
  if (!(Array.isArray(targets) && targets.every((t) => typeof t === 'string')) && targets !== 'all-linear') throw fail('target_modules', 'a list of module names or "all-linear"')
  if (typeof c.base_model_name_or_path !== 'string' || !c.base_model_name_or_path) throw fail('base_model_name_or_path', 'the base model directory')
  const base = c.base_model_name_or_path
  const basePath = isAbsolute(base) ? base : resolve(dir, base)
  if (!existsSync(join(basePath, 'config.json'))) {
    throw new LoraError(`${path}: base_model_name_or_path ${JSON.stringify(base)}: no model directory at ${basePath} (codiemb loads the base from a local folder; edit the path to where the base model is)`)
  }
  const dropout = typeof c.lora_dropout === 'number' ? c.lora_dropout : 0
  return {options: {rank: c.r as number, alpha: c.lora_alpha, dropout, targetModules: targets as string[] | 'all-linear'}, basePath}
}
