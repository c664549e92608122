/**
 * Loading the model to evaluate: the encoder helper's `loadEncoder` (src/model/encoder.ts) adapted
 * to the engine's EvalEncoder, plus the facts written to model_meta.json.
 */
import {basename, resolve} from 'node:path'
import type {Registry} from '../registry/registry.js'
import type {EvalEncoder} from './evaluate.js'
import type {ModelInfo} from './results.js'

export interface LoadedModel {
  encoder: EvalEncoder
  info: ModelInfo
  dispose(): void
}

/** Loads the model; `onWarning` gets the load's warnings (e.g. checkpoint tensors the encoder does not use). */
export async function loadModelForEval(dir: string, options: {registry: Registry; name?: string; revision?: string; onWarning?: (message: string) => void}): Promise<LoadedModel> {
  const {loadEncoder} = await import('../model/encoder.js')
  const encoder = await loadEncoder(dir, {registry: options.registry, onWarning: options.onWarning})
  let parameters = 0
  for (const v of encoder.variables.values()) parameters += v.size
  return {
    encoder,
    info: {
      name: options.name ?? basename(resolve(dir)),
      revision: options.revision ?? encoder.fingerprint().slice(0, 12),
      embedDim: encoder.hiddenSize,
      maxTokens: encoder.maxLength,
      nParameters: parameters || undefined,
      source: resolve(dir),
    },
    dispose: () => encoder.dispose(),
  }
}
