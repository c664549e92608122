import type {JsonSchema, RegistryEntry} from '../../registry/types.js'
import type {Merger} from '../types.js'
import {DELTA_METHOD_INPUTS} from './delta-method.js'

/**
 * Built-in mergers. Each entry imports its implementation lazily in load(); the options schemas
 * live here so `codiemb list --kind merger --json` can show them without loading anything.
 * Every method is documented (formula, options, relations) at the top of its module.
 */
const lambda = {type: 'number', description: 'λ: scale of the combined delta (1 = full)'}

/**
 * A merger entry: its options object admits only the listed `options` properties; `inputs` are the
 * method's needsBase and minCheckpoints (those of a delta method unless given).
 */
function merger<Options>(
  name: string,
  description: string,
  options: Record<string, JsonSchema>,
  load: () => Promise<{default: Merger<Options>}>,
  inputs: {needsBase: boolean; minCheckpoints: number} = DELTA_METHOD_INPUTS,
): RegistryEntry {
  return {
    kind: 'merger',
    name,
    description,
    optionsSchema: {type: 'object', additionalProperties: false, properties: options},
    meta: {...inputs},
    load: async () => (await load()).default,
  }
}

const deltaOptions = {
  granularity: {enum: ['element', 'tensor'], default: 'element', description: 'weights per element, or per tensor from ‖Δ_k‖'},
  weighting: {enum: ['power', 'softmax'], default: 'power', description: 'w ∝ |Δ|^γ, or softmax of |Δ|/max|Δ| at a temperature'},
  gamma: {type: 'number', minimum: 0, default: 1, description: 'γ of the power weighting (0 = plain average)'},
  temperature: {type: 'number', exclusiveMinimum: 0, default: 1, description: 'T of the softmax weighting'},
  lambda: {...lambda, default: 1},
  epsilon: {type: 'number', minimum: 0, default: 0, description: 'deltas at most this large count as zero (uniform weights)'},
}

const soupOptions = {
  weights: {type: 'array', items: {type: 'number'}, minItems: 1, description: 'one weight per checkpoint (default uniform)'},
  normalize: {type: 'boolean', default: true, description: 'divide the weights by their sum'},
}

const tiesOptions = {
  density: {type: 'number', minimum: 0, maximum: 1, default: 0.2, description: 'fraction of each delta kept (by magnitude)'},
  lambda: {...lambda, default: 1},
}

const dareOptions = {
  p: {type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0.5, description: 'drop probability'},
  seed: {type: 'integer', default: 0, description: 'seed of the drop masks'},
  rescale: {type: 'boolean', default: true, description: 'multiply kept deltas by 1/(1−p)'},
  combine: {enum: ['task-arithmetic', 'ties'], default: 'task-arithmetic', description: 'how the sparsified deltas are combined'},
  lambda: {...lambda, default: 1},
  density: {type: 'number', minimum: 0, maximum: 1, default: 1, description: 'TIES trim density (combine "ties" only)'},
}

export const entries: RegistryEntry[] = [
  merger('delta', 'Delta-guided fusion (default): per parameter, weights each checkpoint by how far it moved from the base, θ0 + λ Σ w_k Δ_k',
    deltaOptions, () => import('./delta.js')),
  merger('soup', 'Model soup: the (weighted) average of the checkpoints; needs no base',
    soupOptions, () => import('./soup.js'), {needsBase: false, minCheckpoints: 1}),
  merger('task-arithmetic', 'Task arithmetic: θ0 + λ Σ_k (θ_k − θ0)',
    {lambda: {...lambda, default: 1}}, () => import('./task-arithmetic.js')),
  merger('ties', 'TIES-merging: trim each delta to its top-density magnitudes, elect a sign per element, average the agreeing deltas',
    tiesOptions, () => import('./ties.js')),
  merger('dare', 'DARE: drop delta elements with probability p (seeded), rescale by 1/(1−p), then task-arithmetic or TIES',
    dareOptions, () => import('./dare.js')),
]
