/**
 * Encoder `bert`: BERT and its descendants (BGE, Chinese BERT/RoBERTa-wwm, MiniLM-style BERTs) as
 * transformers' BertModel computes them — see src/model/bert-family.ts for the formulas. Positions
 * are 0..T-1; checkpoints of task models (BertForMaskedLM, ...) load from their `bert.` tensors.
 */
import {bertFamily} from '../bert-family.js'

export default bertFamily({
  modelTypes: ['bert'],
  baseClass: 'BertModel',
  weightPrefixes: ['', 'bert.'],
  paddingOffsetPositions: false,
  configDefaults: {type_vocab_size: 2},
})
