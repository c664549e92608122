/**
 * Encoder `qwen3`: Qwen3 decoders (Qwen3-Embedding 0.6B/4B/8B) as transformers' Qwen3Model computes
 * them — the Llama-like stack of src/model/decoder-family.ts with per-head q/k RMSNorm before the
 * rotary embedding and an explicit head_dim. Causal unless config.json says is_causal: false.
 */
import {decoderFamily} from '../decoder-family.js'

export default decoderFamily({
  modelTypes: ['qwen3'],
  baseClass: 'Qwen3Model',
  qkvBias: false,
  qkNorm: true,
  minicpmScaling: false,
  // The transformers config class's defaults for keys config.json may leave out.
  classDefaults: {max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 10000, head_dim: 128, hidden_act: 'silu'},
  configDefaults: {attention_bias: false, rope_theta: 1000000},
})
