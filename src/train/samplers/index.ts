import type {RegistryEntry} from '../../registry/types.js'

/**
 * Built-in samplers. Implementations follow ./types.ts (SamplerModule:
 * create(datasets, options, seed) → Sampler); each entry imports its module lazily.
 */
const batchSize = {type: 'integer', minimum: 1, description: 'rows per batch'}
const dropLast = {type: 'boolean', default: false, description: 'drop each dataset’s short last batch (its rows are then unused that epoch)'}

export const entries: RegistryEntry[] = [
  {
    kind: 'sampler',
    name: 'dynamic',
    description: "CoDiEmb's sampler: single-dataset batches, per-task batch sizes, balancing policy across datasets",
    meta: {singleTaskBatches: true},
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        batchSizes: {
          type: 'object',
          additionalProperties: false,
          properties: {ir: {...batchSize, default: 64}, sts: {...batchSize, default: 32}},
        },
        policy: {enum: ['proportional', 'round-robin', 'temperature'], default: 'proportional'},
        alpha: {type: 'number', minimum: 0, default: 0.5, description: 'temperature policy: P(dataset) ∝ size^alpha'},
        dropLast,
      },
    },
    load: () => import('./dynamic.js'),
  },
  {
    kind: 'sampler',
    name: 'single',
    description: 'Single-dataset batches with one batch size for all tasks (ablation baseline)',
    meta: {singleTaskBatches: true},
    optionsSchema: {type: 'object', additionalProperties: false, properties: {batchSize: {...batchSize, default: 32}, dropLast}},
    load: () => import('./single.js'),
  },
  {
    kind: 'sampler',
    name: 'mixed',
    description: 'Batches mixing rows of all datasets and tasks (ablation baseline)',
    meta: {singleTaskBatches: false},
    optionsSchema: {type: 'object', additionalProperties: false, properties: {batchSize: {...batchSize, default: 32}, dropLast}},
    load: () => import('./mixed.js'),
  },
]
