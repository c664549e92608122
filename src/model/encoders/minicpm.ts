/**
 * Encoder `minicpm`: MiniCPM decoders (MiniCPM-Embedding, the CoDiEmb paper's third backbone) as
 * OpenBMB's MiniCPMModel computes them — the Llama-like stack of src/model/decoder-family.ts with the
 * embeddings multiplied by scale_emb and each residual branch by scale_depth / √num_hidden_layers
 * (dim_model_base scales only the language-model head, which an encoder does not have).
 * MiniCPM-Embedding ships is_causal: false (bidirectional attention); without the key, causal.
 */
import {decoderFamily} from '../decoder-family.js'

export default decoderFamily({
  modelTypes: ['minicpm'],
  baseClass: 'MiniCPMModel',
  qkvBias: false,
  qkNorm: false,
  minicpmScaling: true,
  // The transformers config class's defaults for keys config.json may leave out.
  classDefaults: {max_position_embeddings: 2048, rms_norm_eps: 1e-6, rope_theta: 10000, hidden_act: 'silu', scale_emb: 1, scale_depth: 1},
  configDefaults: {scale_emb: 1, scale_depth: 1, dim_model_base: 256, is_causal: false},
})
