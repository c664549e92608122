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
  configDefaults: {attention_bias: false, rope_theta: 1000000},
})
