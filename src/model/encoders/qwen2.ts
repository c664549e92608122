/**
 * Encoder `qwen2`: Qwen2 decoders (gte-Qwen2) as transformers' Qwen2Model computes them — the
 * Llama-like stack of src/model/decoder-family.ts with biases on the q/k/v projections. Causal unless
 * config.json says is_causal: false (gte-Qwen2 trains bidirectionally and ships is_causal: false in
 * some revisions; check the model card).
 */
import {decoderFamily} from '../decoder-family.js'

export default decoderFamily({
  modelTypes: ['qwen2'],
  baseClass: 'Qwen2Model',
  qkvBias: true,
  qkNorm: false,
  minicpmScaling: false,
  // The transformers config class's defaults for keys config.json may leave out.
  classDefaults: {max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 10000, hidden_act: 'silu'},
  configDefaults: {rope_theta: 1000000},
})
