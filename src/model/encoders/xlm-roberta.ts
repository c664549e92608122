/**
 * Encoder `xlm-roberta`: XLM-RoBERTa and RoBERTa (multilingual-E5, bge-m3's backbone) as transformers'
 * XLMRobertaModel computes them — the BERT layer stack of src/model/bert-family.ts with RoBERTa
 * positions: non-padding tokens are numbered from padding_idx + 1, padding tokens get padding_idx, so
 * a model with max_position_embeddings 514 and padding_idx 1 takes 512 tokens. Checkpoints of task
 * models load from their `roberta.` tensors.
 */
import {bertFamily} from '../bert-family.js'

export default bertFamily({
  modelTypes: ['xlm-roberta', 'roberta'],
  baseClass: 'XLMRobertaModel',
  weightPrefixes: ['', 'roberta.'],
  paddingOffsetPositions: true,
  configDefaults: {type_vocab_size: 1, bos_token_id: 0, eos_token_id: 2},
})
