/**
 * Encoder `mistral`: Mistral decoders (e5-mistral-7b-instruct, SFR-Embedding-Mistral) as transformers'
 * MistralModel computes them — the plain stack of src/model/decoder-family.ts; the sliding window caps
 * the sequence length (inside the window attention is plain). Causal unless config.json says
 * is_causal: false.
 */
import {decoderFamily} from '../decoder-family.js'

export default decoderFamily({
  modelTypes: ['mistral'],
  baseClass: 'MistralModel',
  qkvBias: false,
  qkNorm: false,
  minicpmScaling: false,
  // The transformers config class's defaults for keys config.json may leave out.
  classDefaults: {max_position_embeddings: 131072, rms_norm_eps: 1e-6, rope_theta: 10000, sliding_window: 4096, hidden_act: 'silu'},
  configDefaults: {sliding_window: 4096},
})
