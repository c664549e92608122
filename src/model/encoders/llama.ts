/**
 * Encoder `llama`: Llama decoders (LLM2Vec-style backbones) as transformers' LlamaModel computes
 * them — the plain stack of src/model/decoder-family.ts (attention_bias: true is refused). Causal
 * unless config.json says is_causal: false.
 */
import {decoderFamily} from '../decoder-family.js'

export default decoderFamily({
  modelTypes: ['llama'],
  baseClass: 'LlamaModel',
  qkvBias: false,
  qkNorm: false,
  minicpmScaling: false,
  // The transformers config class's defaults for keys config.json may leave out.
  classDefaults: {max_position_embeddings: 2048, rms_norm_eps: 1e-6, rope_theta: 10000, hidden_act: 'silu'},
  configDefaults: {attention_bias: false},
})
