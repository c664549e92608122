/**
 * The plugin's `codiemb:register` hook (declared under oclif.hooks in package.json). Entries are
 * metadata plus a lazy load(): codiemb imports the implementation only when a run uses it. The
 * entry types (LossEntry, SamplerEntry) check at compile time that each load() returns that kind's
 * contract; the imports from 'codiemb' are types only, so the plugin uses the host's codiemb at run time.
 */
import type {LossEntry, RegisterHookOptions, SamplerEntry} from 'codiemb'

export const cosineMseEntry: LossEntry = {
  kind: 'loss',
  name: 'cosine-mse',
  description: 'Mean squared error between pair cosine similarity and the gold label (sentence-transformers CosineSimilarityLoss)',
  meta: {task: 'sts'},
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {scale: {type: 'number', exclusiveMinimum: 0, default: 1, description: 'multiplies the loss'}},
  },
  load: () => import('./cosine-mse.js'),
}

export const sequentialEntry: SamplerEntry = {
  kind: 'sampler',
  name: 'sequential',
  description: 'Single-dataset batches in file order, datasets one after another (curriculum, debugging)',
  meta: {singleTaskBatches: true},
  optionsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      batchSizes: {
        type: 'object',
        additionalProperties: false,
        properties: {ir: {type: 'integer', minimum: 1, default: 64}, sts: {type: 'integer', minimum: 1, default: 32}},
      },
      dropLast: {type: 'boolean', default: false},
    },
  },
  load: () => import('./sequential.js'),
}

export default async function register({registry}: RegisterHookOptions): Promise<void> {
  registry.register(cosineMseEntry, sequentialEntry)
}
