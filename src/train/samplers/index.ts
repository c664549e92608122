import type {JsonSchema, RegistryEntry} from '../../registry/types.js'
import type {SamplerModule} from './types.js'

/**
 * Built-in samplers. Implementations follow ./types.ts (SamplerModule:
 * create(datasets, options, seed) → Sampler); each entry imports its module lazily.
 */
const batchSize = {type: 'integer', minimum: 1, description: 'rows per batch'}
const dropLast = {type: 'boolean', default: false, description: 'drop each dataset’s short last batch (its rows are then unused that epoch)'}

/**
 * A sampler entry: `singleTaskBatches` says whether every batch comes from one dataset (so one
 * task); its options object admits only the listed `options` properties.
 */
function sampler(
  name: string,
  description: string,
  singleTaskBatches: boolean,
  options: Record<string, JsonSchema>,
  load: () => Promise<SamplerModule>,
): RegistryEntry {
  return {
    kind: 'sampler',
    name,
    description,
    meta: {singleTaskBatches},
    optionsSchema: {type: 'object', additionalProperties: false, properties: options},
    load,
  }
}

const dynamicOptions = {
  batchSizes: {
    type: 'object',
    additionalProperties: false,
    properties: {ir: {...batchSize, default: 64}, sts: {...batchSize, default: 32}},
  },
  policy: {enum: ['proportional', 'round-robin', 'temperature'], default: 'proportional'},
  alpha: {type: 'number', minimum: 0, default: 0.5, description: 'temperature policy: P(dataset) ∝ size^alpha'},
  dropLast,
}

/** Options of the samplers with one batch size for every task. */
const oneBatchSizeOptions = {batchSize: {...batchSize, default: 32}, dropLast}

export const entries: RegistryEntry[] = [
  sampler('dynamic', "CoDiEmb's sampler: single-dataset batches, per-task batch sizes, balancing policy across datasets",
    true, dynamicOptions, () => import('./dynamic.js')),
  sampler('single', 'Single-dataset batches with one batch size for all tasks (ablation baseline)',
    true, oneBatchSizeOptions, () => import('./single.js')),
  sampler('mixed', 'Batches mixing rows of all datasets and tasks (ablation baseline)',
    false, oneBatchSizeOptions, () => import('./mixed.js')),
]
