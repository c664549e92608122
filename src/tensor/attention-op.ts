/**
 * Scaled dot-product attention ops: attention() on [..., T, d] heads, and packedAttention() on a BERT
 * layer's packed q/k/v projection; on a backend with codiemb's fused kernels (torch) one native
 * kernel each, elsewhere the chunked composite of ./attention.ts. Their gradients are registered
 * here, at import.
 */
import * as tf from '@tensorflow/tfjs-core'
import {chunkedAttention} from './attention.js'
import {FUSED} from './fused-names.js'
import {cpuFastPaths, eagerGrads, hasKernel, run} from './kernel-calls.js'

export interface AttentionOptions {
  /**
   * Added to the scores before the softmax; broadcastable to [..., Tq, Tk]. Give a padding mask per
   * key, [B, 1, 1, Tk] with -1e9 on padding: O(B·T) memory, and the fused kernels take it as is.
   */
  maskBias?: tf.Tensor
  /** Multiplies q k^T (default 1/sqrt(d)). */
  scale?: number
  /** Dropout on the attention probabilities (training only; default 0). */
  dropoutRate?: number
  /**
   * Seed of the dropout masks (an integer; drawn at random when omitted). The chunked paths redraw
   * each block's mask from it in the backward pass, so one seed gives one mask, run after run.
   */
  seed?: number
  /** Query rows per block of the chunked paths (default: blocks of about ATTENTION_BLOCK_ELEMENTS scores, at least 16 rows). */
  blockRows?: number
}

/** Scores per block of the chunked paths by default: 2^24 (64 MiB of float32). */
export const ATTENTION_BLOCK_ELEMENTS = 2 ** 24

/**
 * softmax(q k^T * scale + maskBias) v, with dropout on the probabilities, for q [..., Tq, d], k
 * [..., Tk, d] and v [..., Tk, dv] with equal leading dims (typically [batch, heads, tokens,
 * headDim]); returns [..., Tq, dv]. Gradients flow to q, k, v and maskBias.
 *
 * Memory: what backward keeps is q, k, v, the mask, the output and each query row's log-sum-exp —
 * O(B·H·T·d), never the [B, H, T, T] probabilities, which the backward pass recomputes block by
 * block (or ATen's fused kernels recompute). On `torch` one native kernel (src/tensor/torch/fused.ts,
 * native/src/attention.cc: ATen's flash / memory-efficient / cuDNN kernels on libtorch >= 2.6, the
 * chunked algorithm elsewhere); on other backends the chunked composite of ./attention.ts.
 */
export function attention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, options: AttentionOptions = {}): tf.Tensor {
  checkAttentionShapes(q, k, v, options.maskBias)
  const attrs = kernelAttrs(options, q.shape[q.shape.length - 1]!, tf.util.sizeFromShape(q.shape.slice(0, -2)), k.shape[k.rank - 2]!)
  if (hasKernel(FUSED.attention)) {
    if (options.maskBias) return run(FUSED.attentionMasked, {q, k, v, maskBias: options.maskBias}, attrs)
    return run(FUSED.attention, {q, k, v}, attrs)
  }
  return chunkedAttention(q, k, v, options.maskBias, {...attrs, matmulRowStats: cpuFastPaths()})
}

/** The attention kernels' attributes: scale, dropout rate and seed, block rows (lead: the product of q's leading dims). */
function kernelAttrs(options: AttentionOptions, d: number, lead: number, tk: number): {scale: number; dropoutRate: number; seed: number; blockRows: number} {
  const scale = options.scale ?? 1 / Math.sqrt(d)
  const dropoutRate = options.dropoutRate ?? 0
  if (!(dropoutRate >= 0 && dropoutRate < 1)) throw new Error(`attention dropout rate must be in [0, 1), got ${dropoutRate}`)
  if (options.seed !== undefined && !Number.isInteger(options.seed)) throw new Error(`attention seed must be an integer, got ${options.seed}`)
  const seed = dropoutRate > 0 ? (options.seed ?? Math.floor(Math.random() * 2 ** 32)) >>> 0 : 0
  const blockRows = Math.max(1, Math.floor(options.blockRows ?? Math.max(16, ATTENTION_BLOCK_ELEMENTS / Math.max(1, lead * tk))))
  return {scale, dropoutRate, seed, blockRows}
}

export interface PackedAttentionOptions extends AttentionOptions {
  /** Sequences in the batch: qkv's rows are batch × tokens, sequence by sequence. */
  batch: number
  /** Attention heads; each is H / heads wide. */
  heads: number
}

/**
 * attention() over a BERT layer's packed projection: qkv [B·T, 3·H] holds each token's query, key
 * and value side by side (each H = heads × d wide, heads side by side), and the context comes back
 * as [B·T, H] rows — what splitting qkv in three, viewing each part as [B, heads, T, d], attending and
 * transposing back gives (that composite is the path on backends without the fused kernels). maskBias
 * broadcasts to [B, heads, T, T] as in attention().
 *
 * Why: on torch this is one kernel forward and one backward, where the composite ran ten tfjs kernels
 * forward (split, three reshapes and transposes, the attention, a transpose and a reshape) and as many
 * gradients; on a GPU a small model's step is bound by that host time per kernel. It also keeps less:
 * qkv and the context rows, which the next dense layer keeps anyway, instead of separate [B, heads,
 * T, d] copies of q, k, v and the output.
 */
export function packedAttention(qkv: tf.Tensor, options: PackedAttentionOptions): tf.Tensor2D {
  const {batch: B, heads} = options
  const [rows, width] = qkv.shape as [number, number]
  if (qkv.rank !== 2 || !(B > 0) || rows % B !== 0 || !(heads > 0) || width % (3 * heads) !== 0) {
    throw new Error(`packedAttention: qkv must be [batch·tokens, 3·heads·d], got [${qkv.shape}] for batch ${B}, ${heads} heads`)
  }
  const [T, H] = [rows / B, width / 3]
  const d = H / heads
  if (hasKernel(FUSED.packedAttention)) {
    const maskBias = options.maskBias
    const problem = maskBias && maskProblem(maskBias, [B, heads, T, T])
    if (problem) throw new Error(`packedAttention: ${problem} (qkv [${qkv.shape}], maskBias [${maskBias!.shape}])`)
    const attrs = {...kernelAttrs(options, d, B * heads, T), batch: B, heads}
    return maskBias ? run(FUSED.packedAttentionMasked, {qkv, maskBias}, attrs) : run(FUSED.packedAttention, {qkv}, attrs)
  }
  return tf.tidy(() => {
    const toHeads = (x: tf.Tensor) => tf.transpose(tf.reshape(x, [B, T, heads, d]), [0, 2, 1, 3])
    const [q, k, v] = tf.split(qkv, 3, 1).map(toHeads)
    return tf.reshape(tf.transpose(attention(q!, k!, v!, options), [0, 2, 1, 3]), [rows, H]) as tf.Tensor2D
  })
}

function checkAttentionShapes(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor | undefined): void {
  const problem = ((): string | undefined => {
    if (q.rank < 2) return 'q must have rank >= 2'
    if (k.rank !== q.rank || v.rank !== q.rank) return 'q, k and v must have the same rank'
    for (let i = 0; i < q.rank - 2; i++) if (k.shape[i] !== q.shape[i] || v.shape[i] !== q.shape[i]) return 'q, k and v must have equal leading dims'
    if (k.shape[k.rank - 1] !== q.shape[q.rank - 1]) return "k's last dim must equal q's"
    if (v.shape[v.rank - 2] !== k.shape[k.rank - 2]) return 'k and v must have the same number of keys'
    return mask && maskProblem(mask, [...q.shape.slice(0, -1), k.shape[k.rank - 2]!])
  })()
  if (problem) throw new Error(`attention: ${problem} (q [${q.shape}], k [${k.shape}], v [${v.shape}]${mask ? `, maskBias [${mask.shape}]` : ''})`)
}

/** Why `mask` does not broadcast to the scores' shape `full`, if it does not. */
function maskProblem(mask: tf.Tensor, full: number[]): string | undefined {
  if (mask.rank > full.length) return `maskBias must have rank <= ${full.length}`
  const off = full.length - mask.rank
  if (mask.shape.some((n, i) => n !== 1 && n !== full[off + i])) return `maskBias must broadcast to [${full}]`
  return undefined
}

for (const [kernelName, masked] of [[FUSED.attention, false], [FUSED.attentionMasked, true]] as const) {
  tf.registerGradient({
    kernelName,
    inputsToSave: masked ? ['q', 'k', 'v', 'maskBias'] : ['q', 'k', 'v'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [q, k, v, ...rest] = saved as tf.Tensor[]
      const maskBias = masked ? rest[0] : undefined
      const y = rest[rest.length - 1]!
      const inputs: Record<string, tf.Tensor> = {dy: dy as tf.Tensor, q: q!, k: k!, v: v!, y}
      if (maskBias) inputs.maskBias = maskBias
      const g = eagerGrads(() => run(FUSED.attentionGrad, inputs, attrs as any))
      const grads: Record<string, () => tf.Tensor> = {q: g(0), k: g(1), v: g(2)}
      // A padding mask is a constant and backprop never asks for its gradient; when a caller does,
      // it costs its own pass (the fused kernels do not reduce it).
      if (maskBias) grads.maskBias = () => run(FUSED.attentionMaskGrad, inputs, attrs as any)
      return grads
    },
  })
}
for (const [kernelName, masked] of [[FUSED.packedAttention, false], [FUSED.packedAttentionMasked, true]] as const) {
  tf.registerGradient({
    kernelName,
    inputsToSave: masked ? ['qkv', 'maskBias'] : ['qkv'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [qkv, ...rest] = saved as tf.Tensor[]
      const inputs: Record<string, tf.Tensor> = {dy: dy as tf.Tensor, qkv: qkv!, y: rest[rest.length - 1]!}
      if (masked) inputs.maskBias = rest[0]!
      const grads: Record<string, () => tf.Tensor> = {qkv: () => run(FUSED.packedAttentionGrad, inputs, {...attrs, wrt: 'qkv'})}
      if (masked) grads.maskBias = () => run(FUSED.packedAttentionGrad, inputs, {...attrs, wrt: 'maskBias'})
      return grads
    },
  })
}
