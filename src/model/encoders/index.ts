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
]
