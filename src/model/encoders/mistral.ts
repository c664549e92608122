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
  configDefaults: {sliding_window: 4096},
})
