import type {JsonSchema, RegistryEntry} from '../../registry/types.js'

/**
 * Built-in losses. Each entry imports its implementation lazily in load(); implementations follow
 * ./types.ts (LossModule). meta.task says which task's batches a loss consumes.
 */
const temperature = (fallback: number): JsonSchema => ({type: 'number', exclusiveMinimum: 0, default: fallback, description: 'softmax temperature τ'})

export const entries: RegistryEntry[] = [
  {
    kind: 'loss',
    name: 'ir-infonce',
    description: 'Multi-positive InfoNCE with hard and in-batch negatives (CoDiEmb IR objective); optional GradCache',
    meta: {task: 'ir'},
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        temperature: temperature(0.02),
        positives: {type: 'integer', minimum: 1, default: 2, description: 'positives per query (P)'},
        negatives: {type: 'integer', minimum: 0, default: 4, description: 'hard negatives per query (N)'},
        cache: {
          type: 'object',
          additionalProperties: false,
          required: ['chunkSize'],
          properties: {chunkSize: {type: 'integer', minimum: 1, description: 'texts encoded per GradCache chunk'}},
        },
      },
    },
    load: () => import('./ir-infonce.js'),
  },
  {
    kind: 'loss',
    name: 'pearson',
    description: '1 − Pearson correlation of pair similarities and gold labels (0 when labels are constant)',
    meta: {task: 'sts'},
    optionsSchema: {type: 'object', additionalProperties: false, properties: {}},
    load: () => import('./pearson.js'),
  },
  {
    kind: 'loss',
    name: 'rank-kl',
    description: 'KL(softmax(label ranks/τ) ‖ softmax(similarities/τ)), batch-mean',
    meta: {task: 'sts'},
    optionsSchema: {type: 'object', additionalProperties: false, properties: {temperature: temperature(0.05)}},
    load: () => import('./rank-kl.js'),
  },
  {
    kind: 'loss',
    name: 'pro',
    description: 'Preference Ranking Optimisation weighted by label gaps',
    meta: {task: 'sts'},
    optionsSchema: {type: 'object', additionalProperties: false, properties: {temperature: temperature(0.05)}},
    load: () => import('./pro.js'),
  },
  {
    kind: 'loss',
    name: 'mid-infonce',
    description: 'InfoNCE on middle-layer embeddings of STS pairs whose label reaches a threshold',
    meta: {task: 'sts', needsMiddleLayer: true},
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        temperature: temperature(0.02),
        threshold: {type: 'number', default: 1.0, description: 'pairs with label ≥ threshold (labels in [0,1]) are anchors'},
      },
    },
    load: () => import('./mid-infonce.js'),
  },
  {
    kind: 'loss',
    name: 'cosent',
    description: 'CoSENT: log(1 + Σ_{y_i>y_j} exp(λ(s_j − s_i))) (baseline)',
    meta: {task: 'sts'},
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {scale: {type: 'number', exclusiveMinimum: 0, default: 20, description: 'scale λ'}},
    },
    load: () => import('./cosent.js'),
  },
  {
    kind: 'loss',
    name: 'codiemb-sts',
    description: "CoDiEmb's STS objective: mid-infonce + 0.5·pro + 2·pearson + 5·rank-kl (weights configurable)",
    meta: {task: 'sts', needsMiddleLayer: true},
    optionsSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        weights: {
          type: 'object',
          additionalProperties: false,
          properties: Object.fromEntries(
            ['midInfonce', 'pro', 'pearson', 'rankKl', 'cosent'].map((k) => [k, {type: 'number', minimum: 0}]),
          ),
        },
        temperature: temperature(0.02),
        rankTemperature: temperature(0.05),
        threshold: {type: 'number', default: 1.0},
        scale: {type: 'number', exclusiveMinimum: 0, default: 20},
      },
    },
    load: () => import('./codiemb-sts.js'),
  },
]
