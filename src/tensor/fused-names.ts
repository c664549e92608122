/** Kernel names of codiemb's fused ops (src/tensor/ops.ts registers their gradients; backends their kernels). */
export const FUSED = {
  gelu: 'CodiembGelu',
  geluGrad: 'CodiembGeluGrad',
  layerNorm: 'CodiembLayerNorm',
  layerNormGrad: 'CodiembLayerNormGrad',
  attention: 'CodiembAttention',
  attentionMasked: 'CodiembAttentionMasked',
  attentionGrad: 'CodiembAttentionGrad',
  attentionMaskGrad: 'CodiembAttentionMaskGrad',
  dropout: 'CodiembDropout',
  dropoutGrad: 'CodiembDropoutGrad',
  storageCast: 'CodiembStorageCast',
} as const
