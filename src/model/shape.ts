/**
 * A model's architecture and config without its weights: what memory planning needs before (or
 * instead of) loading a model. A model directory's config.json, or the config a random
 * initialisation (`{init: {arch, tokenizer, layers, …}}`) would write, taking the vocabulary size and
 * padding id from the tokenizer exactly as initRandomEncoder does.
 */
import type {Registry} from '../registry/registry.js'
import type {EncoderArchitecture, HfConfig} from './architecture.js'
import {architectureFor, EncoderLoadError, readModelConfig} from './consistency.js'
import {loadTokenizer} from './tokenizer/tokenizer.js'
import {isAdapterFolder, readAdapterConfig} from './lora.js'
import type {TextTokenizer} from './tokenizer/types.js'

/** A model directory (as a path or {path}), or the shape of a random encoder. */
export type ModelSource = string | {path: string; isCausal?: boolean} | {init: {arch: string; tokenizer: string; layers: number; hidden: number; heads: number; intermediate: number; maxPositions?: number}}

/** The architecture and config of a model directory or random-init spec (reads config.json or the tokenizer, no weights). */
export async function modelShape(spec: ModelSource, registry: Registry): Promise<{arch: EncoderArchitecture; config: HfConfig}> {
  if (typeof spec === 'string' || 'path' in spec) {
    const given = typeof spec === 'string' ? spec : spec.path
    // A LoRA adapter folder (a LoRA run's checkpoint) has the shape of its base model.
    const dir = isAdapterFolder(given) ? readAdapterConfig(given).basePath : given
    const config = readModelConfig(dir)
    if (typeof spec === 'object' && spec.isCausal !== undefined) config.is_causal = spec.isCausal
    return {arch: await architectureFor(config.model_type, registry, `${dir}/config.json`), config}
  }
  const init = spec.init
  const arch = await architectureFor(init.arch, registry, '--arch')
  const tokenizer = await loadTokenizer(init.tokenizer)
  return {arch, config: randomModelConfig(arch, tokenizer, init)}
}

/**
 * The config a random initialisation writes: the shape asked for, with the vocabulary size and padding
 * id from the tokenizer. Shared by initRandomEncoder and memory planning, so a plan sizes exactly the
 * model that will be built. Every id the tokenizer emits needs a row (a vocab.txt with repeated lines
 * has fewer tokens than ids).
 */
export function randomModelConfig(
  arch: EncoderArchitecture,
  tokenizer: TextTokenizer,
  shape: {layers: number; hidden: number; heads: number; intermediate: number; maxPositions?: number},
): HfConfig {
  const config = arch.randomConfig({
    layers: shape.layers,
    hidden: shape.hidden,
    heads: shape.heads,
    intermediate: shape.intermediate,
    vocabSize: Math.max(tokenizer.vocabSize, tokenizer.highestId.id + 1, tokenizer.padId + 1),
    padTokenId: tokenizer.padId,
    maxPositions: shape.maxPositions,
  })
  try {
    arch.validateConfig(config)
  } catch (error) {
    throw new EncoderLoadError(`invalid model shape: ${(error as Error).message}`)
  }
  return config
}
