import type {RegistryEntry} from '../../registry/types.js'
import type {EncoderArchitecture} from '../architecture.js'

/**
 * Built-in encoders, keyed by config.json `model_type` (meta.modelTypes). Each entry imports its
 * implementation lazily in load(), so listing them pulls in no tensor code.
 */
export const entries: RegistryEntry<EncoderArchitecture>[] = [
  {
    kind: 'encoder',
    name: 'bert',
    description: 'BERT family (BERT, BGE, Chinese BERT): post-LayerNorm transformer encoder with absolute positions',
    meta: {modelTypes: ['bert'], hfClass: 'BertModel'},
    load: async () => (await import('./bert.js')).default,
  },
  {
    kind: 'encoder',
    name: 'xlm-roberta',
    description: 'XLM-RoBERTa / RoBERTa (multilingual-E5): BERT layers with positions from padding_idx + 1',
    meta: {modelTypes: ['xlm-roberta', 'roberta'], hfClass: 'XLMRobertaModel'},
    load: async () => (await import('./xlm-roberta.js')).default,
  },
  {
    kind: 'encoder',
    name: 'qwen3',
    description: 'Qwen3 decoder (Qwen3-Embedding): RMSNorm, rotary, SwiGLU, grouped-query attention with per-head q/k norms',
    meta: {modelTypes: ['qwen3'], hfClass: 'Qwen3Model'},
    load: async () => (await import('./qwen3.js')).default,
  },
  {
    kind: 'encoder',
    name: 'minicpm',
    description: 'MiniCPM decoder (MiniCPM-Embedding): the Llama stack with scale_emb and scale_depth residual scaling',
    meta: {modelTypes: ['minicpm'], hfClass: 'MiniCPMModel'},
    load: async () => (await import('./minicpm.js')).default,
  },
  {
    kind: 'encoder',
    name: 'qwen2',
    description: 'Qwen2 decoder (gte-Qwen2): the Llama stack with q/k/v biases',
    meta: {modelTypes: ['qwen2'], hfClass: 'Qwen2Model'},
    load: async () => (await import('./qwen2.js')).default,
  },
  {
    kind: 'encoder',
    name: 'llama',
    description: 'Llama decoder: RMSNorm, rotary, SwiGLU, grouped-query attention',
    meta: {modelTypes: ['llama'], hfClass: 'LlamaModel'},
    load: async () => (await import('./llama.js')).default,
  },
  {
    kind: 'encoder',
    name: 'mistral',
    description: 'Mistral decoder (e5-mistral): the Llama stack, sequences capped at the sliding window',
    meta: {modelTypes: ['mistral'], hfClass: 'MistralModel'},
    load: async () => (await import('./mistral.js')).default,
  },
]
