import type {JsonSchema, RegistryEntry} from '../../registry/types.js'
import type {LossModule, TaskKind} from './types.js'

/**
 * Built-in losses. Each entry imports its implementation lazily in load(); implementations follow
 * ./types.ts (LossModule). meta.task says which task's batches a loss consumes.
 */
const temperature = (fallback: number): JsonSchema => ({type: 'number', exclusiveMinimum: 0, default: fallback, description: 'softmax temperature τ'})

/** A loss entry whose options object admits only the listed `options` properties. */
function loss(
  name: string,
  description: string,
  meta: {task: TaskKind; needsMiddleLayer?: true},
  options: Record<string, JsonSchema>,
  load: () => Promise<LossModule>,
): RegistryEntry {
  return {kind: 'loss', name, description, meta, optionsSchema: {type: 'object', additionalProperties: false, properties: options}, load}
}

const irInfonceOptions = {
  temperature: temperature(0.02),
  positives: {type: 'integer', minimum: 1, default: 2, description: 'positives per query (P)'},
  negatives: {type: 'integer', minimum: 0, default: 4, description: 'hard negatives per query (N)'},
  // No schema default: configurations and plans without it stay as they were (absent = false).
  crossDeviceNegatives: {
    type: 'boolean',
    description: 'data-parallel runs: every query also scores the other processes\' passages (the loss over the global batch; docs/distributed.md)',
  },
  cache: {
    type: 'object',
    additionalProperties: false,
    required: ['chunkSize'],
    properties: {
      chunkSize: {
        oneOf: [{type: 'integer', minimum: 1}, {const: 'auto'}],
        description: 'texts encoded per GradCache chunk, or "auto": the largest that fits the device (resolved at start, kept in checkpoints)',
      },
    },
  },
}

const midInfonceOptions = {
  temperature: temperature(0.02),
  threshold: {type: 'number', default: 1.0, description: 'pairs with label ≥ threshold (labels in [0,1]) are anchors'},
}

const codiembStsOptions = {
  weights: {
    type: 'object',
    additionalProperties: false,
    properties: Object.fromEntries(['midInfonce', 'pro', 'pearson', 'rankKl', 'cosent'].map((k) => [k, {type: 'number', minimum: 0}])),
  },
  temperature: temperature(0.02),
  rankTemperature: temperature(0.05),
  threshold: {type: 'number', default: 1.0},
  scale: {type: 'number', exclusiveMinimum: 0, default: 20},
}

export const entries: RegistryEntry[] = [
  loss('ir-infonce', 'Multi-positive InfoNCE with hard and in-batch negatives (CoDiEmb IR objective); optional GradCache',
    {task: 'ir'}, irInfonceOptions, () => import('./ir-infonce.js')),
  loss('pearson', '1 − Pearson correlation of pair similarities and gold labels (0 when labels are constant)',
    {task: 'sts'}, {}, () => import('./pearson.js')),
  loss('rank-kl', 'KL(softmax(label ranks/τ) ‖ softmax(similarities/τ)), batch-mean',
    {task: 'sts'}, {temperature: temperature(0.05)}, () => import('./rank-kl.js')),
  loss('pro', 'Preference Ranking Optimisation weighted by label gaps',
    {task: 'sts'}, {temperature: temperature(0.05)}, () => import('./pro.js')),
  loss('mid-infonce', 'InfoNCE on middle-layer embeddings of STS pairs whose label reaches a threshold',
    {task: 'sts', needsMiddleLayer: true}, midInfonceOptions, () => import('./mid-infonce.js')),
  loss('cosent', 'CoSENT: log(1 + Σ_{y_i>y_j} exp(λ(s_j − s_i))) (baseline)',
    {task: 'sts'}, {scale: {type: 'number', exclusiveMinimum: 0, default: 20, description: 'scale λ'}}, () => import('./cosent.js')),
  loss('codiemb-sts', "CoDiEmb's STS objective: mid-infonce + 0.5·pro + 2·pearson + 5·rank-kl (weights configurable)",
    {task: 'sts', needsMiddleLayer: true}, codiembStsOptions, () => import('./codiemb-sts.js')),
]
